"""Export: gather the latest LoRAs, their datasets, the contact sheets and the report under plain names."""

from __future__ import annotations

from typing import Any

from ...lora_format import LORA_TYPES


def _prefixed(kind: str, cluster: str) -> str:
    return cluster if cluster.startswith(f"{kind}_") else f"{kind}_{cluster}"


def _ending(inputs: dict[str, Any], suffix: str) -> dict[str, Any]:
    return {key.removesuffix(suffix): value for key, value in inputs.items() if key.endswith(suffix)}


def collect_results(report: str, **inputs: Any) -> dict[str, Any]:
    """One LoRA and one dataset per name over every LoRA type (`<type>_loras`, `<type>_datasets`; two types
    using one name is an error; a type with nothing to teach has none), the contact sheets
    (`<kind>_sheets`) as `<kind>_<cluster>`, and each stage's metrics (`<stage>_metrics`).
    Output: results (ExportFolder)."""
    loras: dict[str, Any] = {}
    for kind in LORA_TYPES:
        clash = sorted(set(loras) & set(inputs[f"{kind}_loras"]))
        if clash:
            raise ValueError(f"Two LoRAs of different types are named {clash}: rename one in `names`")
        loras.update(inputs[f"{kind}_loras"])
    datasets = {name: dataset for kind in LORA_TYPES for name, dataset in inputs[f"{kind}_datasets"].items()
                if not dataset.skipped}
    sheets = _ending(inputs, "_sheets")
    return {
        "loras": loras,
        "datasets": datasets,
        "sheets": {_prefixed(kind, k): v for kind, pictures in sheets.items() for k, v in pictures.items()},
        "report": report,
        "metrics": _ending(inputs, "_metrics"),
    }

"""Export: gather the latest LoRAs, their datasets, the contact sheets and the report under plain names."""

from __future__ import annotations

from typing import Any


def _prefixed(kind: str, cluster: str) -> str:
    return cluster if cluster.startswith(f"{kind}_") else f"{kind}_{cluster}"


def collect_results(
    character_loras: dict[str, Any], background_loras: dict[str, Any],
    character_datasets: dict[str, Any], background_datasets: dict[str, Any],
    character_sheets: dict[str, Any], scene_sheets: dict[str, Any],
    report: str,
    character_metrics: dict[str, Any],
    segmentation_metrics: dict[str, Any],
    background_metrics: dict[str, Any],
) -> dict[str, Any]:
    """One LoRA and one dataset per name (a character and a scene with the same name is an error), the
    cluster contact sheets as `character_<cluster>` / `scene_<cluster>`. Output: results (ExportFolder)."""
    clash = sorted(set(character_loras) & set(background_loras))
    if clash:
        raise ValueError(f"A character and a scene share the names {clash}: rename one in `names`")
    return {
        "loras": {**character_loras, **background_loras},
        "datasets": {**character_datasets, **background_datasets},
        "sheets": {**{_prefixed("character", k): v for k, v in character_sheets.items()},
                   **{_prefixed("scene", k): v for k, v in scene_sheets.items()}},
        "report": report,
        "metrics": {"character": character_metrics, "segmentation": segmentation_metrics,
                    "background": background_metrics},
    }

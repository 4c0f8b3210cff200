"""One LoRA per selected character / scene: the namespace's main LoRA (trained by `train`) plus one more
`train` per other entry of `<namespace>.lora_datasets`, each under its own name, with all of `train`'s
outputs kept."""

from __future__ import annotations

from typing import Any

import pandas as pd
from PIL import Image

from ...lora_dataset import TrainingSet
from ...lora_format import LoraFile
from .nodes import train
from .parameters import Training


def train_each(
    lora_datasets: dict[str, TrainingSet],
    main_dataset: TrainingSet,
    main_lora: LoraFile,
    main_epochs: dict[str, LoraFile],
    main_history: pd.DataFrame,
    main_samples: Image.Image,
    best: dict[str, Any],
    training: Training,
    diffusion: dict[str, Any],
) -> dict[str, Any]:
    """Every dataset's LoRA and what its training gave; the main one is not trained twice (its outputs come in
    from `train`), and a dataset with nothing to teach gives no entry. Outputs: loras ({name: LoRA}),
    lora_epochs_by_name (every name's per-epoch saves, `<name>-000001` …), training_history_by_name (every
    name's history, a `name` column first), samples_by_name ({name: sample images})."""
    trained: dict[str, dict[str, Any]] = {}
    if not main_lora.skipped:
        trained[main_dataset.name] = {"lora": main_lora, "lora_epochs": main_epochs,
                                      "training_history": main_history, "training_samples": main_samples}
    for name, dataset in lora_datasets.items():
        if name not in trained and not dataset.skipped:
            trained[name] = train(dataset, best, training, diffusion)
    histories = [out["training_history"].assign(name=name) for name, out in trained.items()]
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(
        {"name": pd.Series(dtype="str"), "step": pd.Series(dtype="int64")})
    return {
        "loras": {name: out["lora"] for name, out in trained.items()},
        "lora_epochs_by_name": {k: v for out in trained.values() for k, v in out["lora_epochs"].items()},
        "training_history_by_name": history[["name", *[c for c in history.columns if c != "name"]]],
        "samples_by_name": {name: out["training_samples"] for name, out in trained.items()},
    }

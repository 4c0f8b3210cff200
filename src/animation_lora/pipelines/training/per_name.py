"""One LoRA per selected character / scene: the namespace's main LoRA (trained by `train`) plus one more
`train` per other entry of `<namespace>.lora_datasets`, each under its own name."""

from __future__ import annotations

from typing import Any

from PIL import Image

from ...lora_dataset import TrainingSet
from ...lora_format import LoraFile
from .nodes import train


def train_each(
    lora_datasets: dict[str, TrainingSet],
    main_dataset: TrainingSet,
    main_lora: LoraFile,
    main_samples: Image.Image,
    best: dict[str, Any],
    training: dict[str, Any],
    diffusion: dict[str, Any],
) -> tuple[dict[str, LoraFile], dict[str, Image.Image]]:
    """`{name: LoRA}` and `{name: samples}` for every dataset; the main one is not trained twice, and a
    dataset with nothing to teach gives no entry. Outputs: `<namespace>.loras`,
    `<namespace>.samples_by_name`."""
    loras, samples = {main_dataset.name: main_lora}, {main_dataset.name: main_samples}
    if main_lora.skipped:
        loras, samples = {}, {}
    for name, dataset in lora_datasets.items():
        if name not in loras and not dataset.skipped:
            lora, _, _, _, grid = train(dataset, best, training, diffusion)
            loras[name], samples[name] = lora, grid
    return loras, samples

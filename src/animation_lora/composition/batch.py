"""One composition run: every prompt x strategy x sample, and the table that says how each image was made.
`solo` expands to one variant per LoRA, labelled `solo:<lora>` in the table, the grid and the report."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from .composer import Composer
from .parameters import Sampling
from .prompts import Request


def variant_label(strategy: str, lora: str | None = None) -> str:
    """`merge`, or `solo:character` for one LoRA alone."""
    return f"{strategy}:{lora}" if lora else strategy


def label_strategy(label: str) -> str:
    """The strategy a label runs: `solo:character` -> `solo`."""
    return label.split(":", 1)[0]


def variants(strategy: str, request: Request) -> list[tuple[str, Request]]:
    """(label, request) pairs of one strategy: `solo` gives each LoRA of the request alone at its weight."""
    if strategy != "solo":
        return [(strategy, request)]
    return [
        (variant_label(strategy, n), Request(request.prompt, {n: w})) for n, w in request.weights.items() if w
    ]


def image_id(prompt_index: int, label: str, sample: int) -> str:
    return f"p{prompt_index}_{label.replace(':', '-')}_s{sample}"


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A diffusers image (float in [0, 1]) as uint8."""
    return (image * 255).round().astype(np.uint8)


def generate_all(
    composer: Composer, requests: list[Request], strategies: list[str], settings: Sampling, num_samples: int
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Images by id, and the table: prompt, strategy label, weights used and requested, seed, seconds."""
    images, rows = {}, []
    for p, request in enumerate(requests):
        for strategy in strategies:
            for label, req in variants(strategy, request):
                for sample, seed in enumerate(settings.seeds[:num_samples]):
                    start = time.perf_counter()
                    image = composer.generate(label_strategy(label), req, settings, seed)
                    key = image_id(p, label, sample)
                    images[key] = to_uint8(image)
                    used = {} if strategy == "base" else req.weights  # what this image ran with
                    seconds = time.perf_counter() - start
                    rows.append(
                        dict(
                            image_id=key,
                            prompt_index=p,
                            prompt=req.prompt,
                            strategy=label,
                            sample=sample,
                            seed=seed,
                            weights=json.dumps(used),
                            requested=json.dumps(request.weights),
                            seconds=seconds,
                        )
                    )
    return images, pd.DataFrame(rows)

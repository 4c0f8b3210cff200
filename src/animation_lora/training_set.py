"""The one LoRA dataset builder all four LoRA types use: pick the images, caption them, and describe
the kohya sd-scripts dataset (`train_network.py --dataset_config`).

Seed: `prepare_training_data.py --target-size 300` and the subset keys num_repeats=1, shuffle_caption=true,
keep_tokens=3, caption_extension=".txt", color_aug=false, flip_aug=false."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """What `KohyaDatasetFolder` writes: images + captions + the dataset TOML (image_dir filled in on save)."""

    name: str
    trigger: str
    images: dict[str, Any]  # id -> uint8 RGB array or a loader
    captions: dict[str, str]
    toml: dict[str, Any]
    report: pd.DataFrame = field(default_factory=pd.DataFrame)


def select_images(ids: list[str], quality: np.ndarray, vectors: np.ndarray | None, target: int,
                  ) -> tuple[list[str], int, str]:
    """Up to `target` images: the sharpest first, then each next one the farthest (in embedding space)
    from those already chosen, so near-identical frames do not crowd out variety. Fewer images than the
    target are all kept and repeated (kohya's num_repeats) up to about the target."""
    if not ids:
        raise ValueError("No images to build a LoRA dataset from")
    if len(ids) <= target:
        repeats = max(1, math.ceil(target / len(ids)))
        note = f"only {len(ids)} images for a target of {target}: all kept, num_repeats={repeats}" if repeats > 1 else "all kept"
        return list(ids), repeats, note
    order = [int(np.argmax(quality))]
    if vectors is None:
        order = list(np.argsort(-quality)[:target])
    else:
        dist = np.linalg.norm(vectors - vectors[order[0]], axis=1)
        while len(order) < target:
            nxt = int(np.argmax(dist + 1e-6 * quality / max(quality.max(), 1e-9)))  # ties go to the sharper
            order.append(nxt)
            dist = np.minimum(dist, np.linalg.norm(vectors - vectors[nxt], axis=1))
    return [ids[i] for i in sorted(order)], 1, f"selected {target} of {len(ids)} (sharpness + embedding diversity)"


def kohya_toml(params: dict[str, Any], num_repeats: int) -> dict[str, Any]:
    """The dataset config as sd-scripts validates it: [general], [[datasets]], [[datasets.subsets]]
    (image_dir is added when the folder is written)."""
    subset = {
        "num_repeats": int(num_repeats),
        "shuffle_caption": bool(params.get("shuffle_caption", True)),
        "keep_tokens": int(params.get("keep_tokens", 3)),
        "caption_extension": ".txt",
        "color_aug": bool(params.get("color_aug", False)),
        "flip_aug": bool(params.get("flip_aug", False)),
    }
    resolution = int(params.get("resolution", 512))
    dataset = {
        "resolution": resolution,
        "batch_size": int(params.get("batch_size", 1)),
        "enable_bucket": bool(params.get("enable_bucket", True)),
        # sd-scripts defaults to 256..1024, which refuses low-resolution (demo) sets: derive from resolution
        "min_bucket_reso": int(params.get("min_bucket_reso", max(64, resolution // 4 // 64 * 64))),
        "max_bucket_reso": int(params.get("max_bucket_reso", resolution * 2)),
        "bucket_reso_steps": int(params.get("bucket_reso_steps", 64)),
        "bucket_no_upscale": bool(params.get("bucket_no_upscale", True)),
        "subsets": [subset],
    }
    return {"general": {}, "datasets": [dataset]}


def build_lora_dataset(name: str, trigger: str, images: dict[str, Any], captions: dict[str, str],
                       quality: dict[str, float], vectors: dict[str, np.ndarray] | None, params: dict[str, Any],
                       to_rgb: Callable[[Any], np.ndarray] | None = None) -> TrainingSet:
    """Select `params['target_size']` images and describe the kohya dataset. `to_rgb` turns an item
    into the RGB image written (e.g. a character cut-out flattened over white)."""
    ids = sorted(images)
    q = np.array([quality.get(i, 0.0) for i in ids], dtype=float)
    v = np.stack([vectors[i] for i in ids]) if vectors else None
    chosen, repeats, note = select_images(ids, q, v, int(params["target_size"]))
    if repeats > 1:
        log.warning("LoRA dataset '%s': %s", name, note)
    report = pd.DataFrame({"id": ids, "selected": [i in set(chosen) for i in ids],
                           "quality": q, "caption": [captions.get(i, "") for i in ids]})
    report.attrs["note"] = note
    convert = to_rgb or (lambda x: x)
    return TrainingSet(
        name=name, trigger=trigger,
        images={i: (lambda item=images[i]: convert(item() if callable(item) else item)) for i in chosen},
        captions={i: captions[i] for i in chosen},
        toml=kohya_toml(params, repeats),
        report=report.assign(note=note, num_repeats=repeats),
    )

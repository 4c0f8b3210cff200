"""The training data as kohya prepares it: aspect-ratio buckets, captions (shuffled tags, kept tokens,
dropout), a validation split, batches of one bucket each (with their loss masks), and VAE latents cached by
image content."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..backends.diffusion import BaseModel, working_vae
from ..image_loop import materialise
from ..lora_dataset import TrainingSet
from .config import DatasetSettings, TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Example:
    key: str
    image: np.ndarray
    caption: str
    mask: np.ndarray | None = None  # float32 0..1 per pixel of `image` (its alpha), with `masked_loss`
    original_size: tuple[int, int] = (0, 0)  # (h, w) before fitting: SDXL conditions on it
    fit: Fit | None = None  # how it was fitted to its bucket


def buckets(resolution: int, steps: int, min_reso: int, max_reso: int) -> list[tuple[int, int]]:
    """kohya-style buckets: (w, h) multiples of `steps` within [min, max] and area <= resolution^2."""
    sizes = range(min_reso, max_reso + 1, steps)
    return sorted(
        {
            (w, h)
            for w in sizes
            for h in sizes
            if w * h <= resolution * resolution and max(w, h) / min(w, h) <= 4
        }
    )


@dataclass(frozen=True)
class Fit:
    """Where a picture goes in training: resized to `resized` (w, h), then `bucket` (w, h) cropped at
    `crop` (top, left)."""

    bucket: tuple[int, int]
    resized: tuple[int, int]
    crop: tuple[int, int]

    def apply(self, image: np.ndarray) -> np.ndarray:
        im = Image.fromarray(image).resize(self.resized, Image.BICUBIC)
        (bw, bh), (top, left) = self.bucket, self.crop
        return np.asarray(im.crop((left, top, left + bw, top + bh)))


def bucket_fit(width: int, height: int, settings: DatasetSettings, resolution: int) -> Fit:
    """sd-scripts' bucket for a picture. With `bucket_no_upscale` (its BucketManager's rule) a picture
    larger than resolution^2 is shrunk to that area (one side rounded to `bucket_reso_steps`, whichever
    keeps the aspect ratio better), a smaller one keeps its size, and the bucket is that size rounded down to
    the steps: nothing is enlarged. Otherwise the predefined bucket (area <= resolution^2, within
    [min_bucket_reso, max_bucket_reso]) of the closest aspect ratio, the picture resized to cover it. Both
    centre-crop."""
    steps = min(settings.bucket_reso_steps, resolution // 2)
    ar = width / height
    if settings.bucket_no_upscale:
        rw, rh = width, height
        if width * height > resolution * resolution:
            def to_steps(x: float) -> int:
                return max(steps, int(x / steps + 0.5) * steps)

            by_width = to_steps(math.sqrt(resolution * resolution * ar))
            by_height = to_steps(resolution / math.sqrt(ar))
            if abs(by_width / to_steps(by_width / ar) - ar) < abs(to_steps(by_height * ar) / by_height - ar):
                rw, rh = by_width, int(by_width / ar + 0.5)
            else:
                rw, rh = int(by_height * ar + 0.5), by_height
        rw, rh = max(rw, steps), max(rh, steps)  # a picture smaller than one step is the one enlargement
        bucket = (rw - rw % steps, rh - rh % steps)
    else:
        options = buckets(resolution, steps, max(32, min(settings.min_bucket_reso, resolution // 2)),
                          max(resolution, min(settings.max_bucket_reso, resolution * 2)))
        bucket = min(options, key=lambda s: (abs(math.log(s[0] / s[1]) - math.log(ar)), -s[0] * s[1]))
        scale = max(bucket[0] / width, bucket[1] / height)
        rw, rh = max(bucket[0], round(width * scale)), max(bucket[1], round(height * scale))
    return Fit(bucket, (rw, rh), ((rh - bucket[1]) // 2, (rw - bucket[0]) // 2))


def make_caption(caption: str, shuffle: bool, keep_tokens: int, dropout: float, rng: random.Random) -> str:
    """kohya: keep the first `keep_tokens` comma-separated tags in place, shuffle the rest; drop whole
    captions with `caption_dropout_rate`."""
    if dropout and rng.random() < dropout:
        return ""
    tags = [t.strip() for t in caption.split(",") if t.strip()]
    head, tail = tags[:keep_tokens], tags[keep_tokens:]
    if shuffle:
        rng.shuffle(tail)
    return ", ".join(head + tail)


def tag_frequency(examples: list[Example]) -> dict[str, int]:
    """kohya's ss_tag_frequency: how often each tag occurs in the captions."""
    return dict(Counter(t.strip() for e in examples for t in e.caption.split(",") if t.strip()))


def prepare_examples(dataset: TrainingSet, cfg: TrainConfig, settings: DatasetSettings) -> list[Example]:
    """Every readable image fitted to its bucket, with its caption (unreadable images are skipped with a
    warning; a missing caption is an error or the trigger word, as `missing_caption` says)."""
    resolution = cfg.resolution or settings.resolution
    examples = []
    use_alpha = cfg.masked_loss and settings.alpha_mask
    for key in sorted(dataset.images):
        try:
            picture = Image.fromarray(materialise(dataset.images[key]))
            image = np.asarray(picture.convert("RGB"))  # RGBA -> RGB drops the alpha, nothing composited
        except (OSError, ValueError) as err:
            log.warning("Training set '%s': skipped '%s': %s", dataset.name, key, err)
            continue
        caption = (dataset.captions.get(key) or "").strip()
        if not caption:
            if cfg.missing_caption != "trigger":
                raise ValueError(
                    f"Image '{key}' of '{dataset.name}' has no caption (missing_caption: error; "
                    f"'trigger' trains it with the trigger word alone)"
                )
            caption = dataset.trigger
        alpha = np.asarray(picture.getchannel("A")) if use_alpha and picture.mode == "RGBA" else None
        fit = bucket_fit(picture.width, picture.height, settings, resolution)
        mask = None if alpha is None else fit.apply(alpha).astype(np.float32) / 255
        examples.append(Example(key, fit.apply(image), caption, mask, image.shape[:2], fit))
    return examples


def size_conditions(batch: list[Example], flips: list[bool], device) -> torch.Tensor:
    """SDXL's micro-conditioning per example, as sd-scripts computes it: original (h, w), the crop's (top,
    left) — mirrored with a flipped picture — and the target (bucket) (h, w)."""
    rows = []
    for example, flip in zip(batch, flips, strict=True):
        bh, bw = example.image.shape[:2]
        fit = example.fit or Fit((bw, bh), (bw, bh), (0, 0))
        top, left = fit.crop
        if flip:
            left = fit.resized[0] - left - bw
        rows.append([*(example.original_size if example.fit else (bh, bw)), top, left, bh, bw])
    return torch.tensor(rows, dtype=torch.float32, device=device)


def bucket_histogram(examples: list[Example], repeats: int) -> dict[tuple[int, int], int]:
    """Pictures (with their repeats) per bucket (w, h): kohya's `ss_bucket_info`."""
    counts = Counter((e.image.shape[1], e.image.shape[0]) for e in examples)
    return {size: n * repeats for size, n in sorted(counts.items())}


def batch_masks(batch: list[Example], flips: list[bool], device) -> torch.Tensor | None:
    """The batch's loss masks (B x 1 x H x W, flipped with their images; ones for an example without one),
    or None when no example has a mask."""
    if all(e.mask is None for e in batch):
        return None
    masks = [np.ones(e.image.shape[:2], np.float32) if e.mask is None else e.mask for e in batch]
    masks = [m[:, ::-1] if flip else m for m, flip in zip(masks, flips, strict=True)]
    return torch.from_numpy(np.stack(masks).copy())[:, None].to(device)


def bucket_batches(
    examples: list[Example],
    repeats: int,
    batch_size: int,
    rng: random.Random,
) -> list[list[Example]]:
    """kohya: a batch holds images of one bucket size; buckets shuffled within, batches shuffled across."""
    by_size: dict[tuple, list[Example]] = {}
    for e in examples:
        by_size.setdefault(e.image.shape, []).extend([e] * repeats)
    batches = []
    for size in sorted(by_size):
        items = by_size[size]
        rng.shuffle(items)
        batches += [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    rng.shuffle(batches)
    return batches


def split_validation(
    examples: list[Example],
    fraction: float,
    seed: int,
) -> tuple[list[Example], list[Example]]:
    """A held-out share of the examples (at least one when there are two or more), the same for a seed."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(examples) * fraction)) if len(examples) > 1 and fraction > 0 else 0
    val = [examples[i] for i in sorted(order[:n_val])]
    return [examples[i] for i in sorted(order[n_val:])], val


class LatentCache:
    """VAE latents keyed by image content, size and the VAE: in memory, and on disk when asked, so
    epochs, trials and reruns encode each image once."""

    def __init__(self, base: BaseModel, folder: str | None):
        self.base, self.memory = base, {}
        self.folder = Path(folder) / "latents" if folder else None
        self.vae_key = base.model_hash + ("" if base.vae.dtype == torch.float32 else str(base.vae.dtype))

    def key(self, image: np.ndarray) -> str:
        return hashlib.sha1(image.tobytes() + str(image.shape).encode() + self.vae_key.encode()).hexdigest()

    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        """The latents on the device in the frozen weights' dtype (a float16 SDXL VAE encodes in float32)."""
        vae = working_vae(self.base.vae)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].to(vae.device, vae.dtype) / 127.5 - 1
        latents = vae.encode(x).latent_dist.mean[0] * vae.config.scaling_factor
        return latents.to(self.base.vae.dtype)

    def get(self, image: np.ndarray) -> torch.Tensor:
        k = self.key(image)
        if k in self.memory:
            return self.memory[k]
        path = self.folder / f"{k}.safetensors" if self.folder else None
        if path is not None and path.exists():
            from safetensors.torch import load_file

            latent = load_file(str(path), device=str(self.base.vae.device))["latent"]
        else:
            latent = self.encode(image)
            if path is not None:
                from safetensors.torch import save_file

                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # atomic: no half-written latent
                save_file({"latent": latent.contiguous().cpu()}, str(tmp))
                tmp.replace(path)
        self.memory[k] = latent
        return latent


def example_latents(cache: LatentCache, example: Example, flipped: bool, cached: bool) -> torch.Tensor:
    """An example's latents (its image flipped left-right with `flipped`), from `cache` with `cache_latents`,
    else encoded."""
    image = example.image[:, ::-1].copy() if flipped else example.image
    return cache.get(image) if cached else cache.encode(image)

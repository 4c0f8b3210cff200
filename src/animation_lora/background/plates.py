"""Background plates as the LoRA trains on them: the invented pixels (inpainted: what temporal fill could
not recover) travel as alpha 0, known pixels alpha 255 (kohya's `alpha_mask` + `masked_loss`), and a plate
is cropped away from a large hole when the crop keeps enough of the image."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..image_loop import map_images
from ..lora_dataset import TrainingSet, drop_images, nothing_to_teach
from ..params import block
from .purity import residue_of

log = logging.getLogger(__name__)


@block
class LayerChecks:
    max_hole_fraction: float = 0.98  # plates (almost) all hole are skipped


def hole_fraction(frame: str, pair: tuple[np.ndarray, np.ndarray]) -> float:
    """The share of a background layer that is hole; a hole mask of another size is an error naming the
    frame."""
    layer, hole = pair
    if layer.shape[:2] != hole.shape[:2]:
        raise ValueError(
            f"Hole mask of frame '{frame}' is {hole.shape[1]}x{hole.shape[0]} but its background "
            f"layer is {layer.shape[1]}x{layer.shape[0]}"
        )
    return float((hole > 0).mean())


@block
class PlateCrop:
    enabled: bool = True
    min_area: float = 0.5  # the crop keeps at least this share of the plate
    max_hole: float = 0.02  # ... and at most this share of the crop is invented
    max_aspect: float = 2.0  # long side / short side of the crop
    grid: int = 32  # crop edges are searched on a grid of this many steps per side


def hole_free_crop(hole: np.ndarray, params: PlateCrop) -> tuple[int, int, int, int] | None:
    """The largest axis-aligned crop (x0, y0, x1, y1) with at most `max_hole` of it hole, at least
    `min_area` of the plate and an aspect ratio within `max_aspect` (ties: the least hole); None when the
    plate is within `max_hole` already or no crop qualifies."""
    h, w = hole.shape
    if not params.enabled or hole.mean() <= params.max_hole:
        return None
    table = np.zeros((h + 1, w + 1), np.int64)
    table[1:, 1:] = hole.astype(np.int64).cumsum(0).cumsum(1)
    xs = np.unique(np.linspace(0, w, min(params.grid, w) + 1).round().astype(int))
    ys = np.unique(np.linspace(0, h, min(params.grid, h) + 1).round().astype(int))
    x0, x1 = xs[:, None], xs[None, :]  # every pair of edges: (y0, y1, x0, x1) by broadcasting
    y0, y1 = ys[:, None, None, None], ys[None, :, None, None]
    holes = table[y1, x1] - table[y0, x1] - table[y1, x0] - table[y0, x0]
    width, height = np.broadcast_to(x1 - x0, holes.shape), np.broadcast_to(y1 - y0, holes.shape)
    area = width * height
    ok = (width > 0) & (height > 0)
    ok &= (area >= params.min_area * h * w) & (holes <= params.max_hole * np.maximum(area, 1))
    ok &= np.maximum(width, height) <= params.max_aspect * np.minimum(width, height)
    if not ok.any():
        return None
    score = np.where(ok, area - holes / np.maximum(area, 1), -1.0)  # largest, then the least hole
    a, b, c, d = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(xs[c]), int(ys[a]), int(xs[d]), int(ys[b])


def masked_plate(plate: np.ndarray, invented: np.ndarray, crop: PlateCrop) -> np.ndarray:
    """The plate as RGBA: alpha 0 where its pixels were invented, 255 where known; cropped by
    `hole_free_crop` when a crop qualifies."""
    if invented.shape != plate.shape[:2]:
        raise ValueError(
            f"Hole mask is {invented.shape[1]}x{invented.shape[0]} but its plate is "
            f"{plate.shape[1]}x{plate.shape[0]}"
        )
    alpha = np.where(invented, 0, 255).astype(np.uint8)
    rgba = np.dstack([plate[..., :3], alpha])
    box = hole_free_crop(invented, crop)
    if box is None:
        return rgba
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(rgba[y0:y1, x0:x1])


PURITY_COLUMNS = ["frame_id", "datasets", "residue_instances", "residue_pixels", "area", "dropped", "reason"]


def drop_leaking(
    main: str, datasets: dict[str, TrainingSet], find: Callable[[np.ndarray], list]
) -> tuple[dict[str, TrainingSet], pd.DataFrame]:
    """Run `find` (the character instances in an image) on every plate of `datasets`, drop the plates where
    it finds one (a dataset left without plates is left out with a warning; the main one is an error).
    Output: the datasets and the purity report (frame_id, datasets, residue_instances, residue_pixels,
    area, dropped, reason)."""
    owners: dict[str, list[str]] = {}
    for name, data in datasets.items():
        for fid in data.images:
            owners.setdefault(fid, []).append(name)
    images = {fid: datasets[names[0]].images[fid] for fid, names in owners.items()}
    found, _ = map_images(dict(sorted(images.items())), lambda im: residue_of(find(im)), "purity", "plate")
    rows = [dict(frame_id=fid, datasets=", ".join(owners[fid]), residue_instances=r.instances,
                 residue_pixels=r.pixels, area=r.pixels / r.size, dropped=bool(r.instances),
                 reason=f"character found: {r.instances} instance(s), {r.pixels} px" if r.instances
                 else "kept") for fid, r in found.items()]
    report = pd.DataFrame(rows, columns=PURITY_COLUMNS)
    reasons = dict(zip(report.frame_id[report.dropped], report.reason[report.dropped]))
    if reasons:
        log.warning("Purity: dropped %d of %d background plates where a character is still found "
                    "(background_purity_report)", len(reasons), len(report))
    out = {}
    for name, data in datasets.items():
        if all(fid in reasons for fid in data.images):
            if name == main:  # the run completes without a background LoRA, and says why
                out[name] = nothing_to_teach("background", (
                    f"a character is still found in every one of the {len(data.images)} plates of '{name}' "
                    f"— see background_purity_report"))
            else:
                log.warning("Background dataset '%s' left out: a character is found in every plate", name)
            continue
        out[name] = drop_images(data, reasons)
    return out, report

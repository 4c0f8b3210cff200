"""A frame's layers: RGBA cut-outs and masks of its character instances, the background layer (hole pixels
black) and its hole mask; a shot segmented at once so instances link into tracks and scenery is dropped or
trimmed; the instance and layer tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..backends.segmentation import Instance, Segmenter
from ..ids import instance_id
from ..params import block
from .masks import hole_mask
from .pointed import CharacterLook
from .tracks import link_tracks, static_strays, trim_scenery

INSTANCE_COLUMNS = ["instance_id", "frame_id", "shot", "instance", "track", "x0", "y0", "x1", "y1", "area",
                    "score", "backend", "kept", "reason"]
LAYER_COLUMNS = ["frame_id", "shot", "instances", "hole_fraction", "background_only", "reason"]


@block
class LayersParams:
    min_instance_pixels: int = 400  # smaller instances are dropped (with the reason in instance_index)
    crop_margin: float = 0.08  # RGBA cut-outs: the instance box grown by this fraction
    hole_margin: int = 3  # px the background hole extends past the characters (for inpainting)
    drop_static_strays: bool = True  # a detection never matched to a track and never moving is scenery
    still_level: float = 4.0  # grey levels: a stray whose pixels change less than this is still
    trim_static_scenery: bool = True  # static camera: a moving character's never-changing pixels are scenery


def crop_instance(
    image: np.ndarray, mask: np.ndarray, margin: float
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """RGBA cut-out of one instance, cropped to its box grown by `margin` (a fraction of the box)."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    mx, my = int((x1 - x0) * margin), int((y1 - y0) * margin)
    h, w = mask.shape
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    rgba = np.dstack([image[y0:y1, x0:x1], mask[y0:y1, x0:x1].astype(np.uint8) * 255])
    return rgba, (int(x0), int(y0), int(x1), int(y1))


def split_frame(
    frame: str,
    shot: int,
    image: np.ndarray,
    found: list,
    params: LayersParams,
    backend: str,
    tracks: list[int] | None = None,
    strays: set[int] = frozenset(),
) -> dict:
    """One frame's segmentation as layers: RGBA cut-outs and masks of the instances large enough, the
    background layer (hole pixels black) and its hole mask, and the rows of the instance and layer tables.
    `tracks` numbers each instance's track in the shot; `strays` are the instances that are scenery."""
    out = {"instances": {}, "masks": {}, "rows": []}
    for k, inst in enumerate(found):
        iid, area = instance_id(frame, k), int(inst.mask.sum())
        row = dict(
            instance_id=iid,
            frame_id=frame,
            shot=shot,
            instance=k,
            track=f"s{shot}_t{tracks[k] if tracks else k}",
            area=area,
            score=float(inst.score),
            backend=backend,
            kept=True,
            reason="kept",
        )
        if area < params.min_instance_pixels:
            row.update(kept=False, reason=f"too small ({area} px < {params.min_instance_pixels})")
        elif k in strays:
            row.update(kept=False, reason="scenery: never matched to a track in its shot and never moves")
        else:
            rgba, box = crop_instance(image, inst.mask, params.crop_margin)
            out["instances"][iid], out["masks"][iid] = rgba, inst.mask
            row.update(dict(zip(("x0", "y0", "x1", "y1"), box)))
        out["rows"].append(row)
    hole = hole_mask(list(out["masks"].values()), image.shape[:2], params.hole_margin)
    out["layer"], out["hole"] = np.where(hole[..., None], 0, image).astype(np.uint8), hole
    out["frame_row"] = dict(
        frame_id=frame,
        shot=shot,
        instances=len(out["masks"]),
        hole_fraction=float(hole.mean()),
        background_only=not out["masks"],
        reason="",
    )
    return out


def layer_shot(segmenter: Segmenter, shot: int, frame_ids: list[str], images: list[np.ndarray],
               params: LayersParams, look: CharacterLook | None = None,
               prompted: dict[str, dict[str, np.ndarray]] | None = None) -> list[dict]:
    """`split_frame` of every frame of one shot: the shot segmented at once, its instances linked into
    tracks, scenery trimmed from moving characters (static camera) and never-moving strays dropped. With a
    `look`, the pointed characters are handed to the segmenter too: on a pointed frame the mask its prompt
    gave (`prompted`, by frame id), elsewhere what the look finds."""
    if look is None:
        found = segmenter.segment_shot(images)
    else:
        pointed = []
        for f, im in zip(frame_ids, images):
            given = (prompted or {}).get(f, {})  # a pointed frame: its prompts' masks; the look for the rest
            found = look.find(im, params.min_instance_pixels) if set(look.names) - set(given) else {}
            pointed.append({**found, **given})
        found = segmenter.segment_shot(images, pointed=[list(p.values()) for p in pointed])
    masks = [[i.mask for i in frame] for frame in found]
    tracks = link_tracks(masks)
    if params.trim_static_scenery:
        masks = trim_scenery(images, masks, tracks, params.still_level)
        found = [[Instance(m, i.score, i.face) for m, i in zip(ms, fr)] for ms, fr in zip(masks, found)]
    strays = static_strays(images, masks, tracks, params.still_level) if params.drop_static_strays else ()
    return [
        split_frame(f, shot, im, inst, params, segmenter.name, tracks[p], {k for q, k in strays if q == p})
        for p, (f, im, inst) in enumerate(zip(frame_ids, images, found))
    ]


def layer_tables(instance_rows: list[dict], frame_rows: list[dict], skipped_frames: list[dict],
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The instance table (every instance, kept or dropped with the reason) and the layer table (every frame;
    the frames of a skipped shot with its reason)."""
    instance_index = pd.DataFrame(instance_rows, columns=INSTANCE_COLUMNS)
    layer_index = pd.DataFrame(frame_rows + skipped_frames, columns=LAYER_COLUMNS)
    return instance_index, layer_index

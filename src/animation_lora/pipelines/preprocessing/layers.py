"""Preprocessing, second half (a): layered segmentation of each kept frame into RGBA character
instances, the background layer with its hole mask, and the instance masks; scored against the demo."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ...backends.segmentation import Instance, hole_mask, make_segmenter
from ...ids import frame_number, instance_id
from ...image_loop import map_images, materialise
from ...metrics import iou
from ...params import block, parse
from ...tracks import link_tracks, static_strays, trim_scenery

log = logging.getLogger(__name__)


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


def segment_layers(
    frames: dict[str, Any], frame_index: pd.DataFrame, segmentation: dict[str, Any], backend: dict[str, Any]
):
    """Split each kept frame, shot by shot, into character instances and a background layer.

    Outputs: character_instances (RGBA crops), instance_masks (frame-sized), background_layers (RGB, hole
    pixels black), hole_masks (instances grown by `hole_margin` px), instance_index (per instance: frame,
    box, area, score, backend, kept/reason) and layer_index (per frame: instances, hole fraction; a shot
    with an unreadable frame is skipped, its frames listed with the reason).
    `backend` are the `segmentation` backend parameters (shared with the background pipeline)."""
    params = parse(LayersParams, segmentation, "preprocessing.layers")
    segmenter = make_segmenter(backend)
    kept = frame_index[frame_index.kept & frame_index.frame_id.isin(list(frames))].sort_values("frame")
    ids_of = {int(shot): list(group.frame_id) for shot, group in kept.groupby("shot")}

    def segment_shot(shot, images):
        images = list(images)
        found = segmenter.segment_shot(images)
        masks = [[i.mask for i in frame] for frame in found]
        tracks = link_tracks(masks)
        if params.trim_static_scenery:
            masks = trim_scenery(images, masks, tracks, params.still_level)
            found = [[Instance(m, i.score) for m, i in zip(ms, fr)] for ms, fr in zip(masks, found)]
        strays = static_strays(images, masks, tracks, params.still_level) if params.drop_static_strays else ()
        name = segmenter.name
        return [
            split_frame(f, shot, im, inst, params, name, tracks[p], {k for q, k in strays if q == p})
            for p, (f, im, inst) in enumerate(zip(ids_of[shot], images, found))
        ]

    shots, skipped = map_images(
        {s: tuple(frames[f] for f in ids) for s, ids in ids_of.items()},
        segment_shot,
        f"segment ({segmenter.name})",
        "shot",
        keyed=True,
    )
    parts = [p for shot in shots.values() for p in shot]
    instances = {k: v for p in parts for k, v in p["instances"].items()}
    masks = {k: v for p in parts for k, v in p["masks"].items()}
    instance_index = pd.DataFrame(
        [r for p in parts for r in p["rows"]],
        columns=[
            "instance_id",
            "frame_id",
            "shot",
            "instance",
            "track",
            "x0",
            "y0",
            "x1",
            "y1",
            "area",
            "score",
            "backend",
            "kept",
            "reason",
        ],
    )
    skipped_frames = [
        dict(frame_id=f, shot=s["id"], instances=0, background_only=False, reason=s["reason"])
        for s in skipped
        for f in ids_of[s["id"]]
    ]
    layer_index = pd.DataFrame(
        [p["frame_row"] for p in parts] + skipped_frames,
        columns=["frame_id", "shot", "instances", "hole_fraction", "background_only", "reason"],
    )
    log.info(
        "%d character instances in %d frames (%d background-only, %d instances dropped)",
        len(instances),
        len(parts),
        int(layer_index.background_only.sum()),
        int((~instance_index.kept).sum()),
    )
    return (
        instances,
        masks,
        {p["frame_row"]["frame_id"]: p["layer"] for p in parts},
        {p["frame_row"]["frame_id"]: p["hole"] for p in parts},
        instance_index,
        layer_index,
    )


def match_to_truth(
    instance_masks: dict[str, Any],
    instance_index: pd.DataFrame,
    ground_truth,
) -> tuple[pd.DataFrame, list[float]]:
    """Pair predicted and true instances in the frames with kept instances (Hungarian on IoU). Returns the
    predicted instances with their true identity (None when unmatched or IoU < 0.5) and the IoU of every
    true instance of those frames (0 when it was missed)."""
    label_of = {v: k for k, v in ground_truth.meta["label_of"].items()}
    kept = instance_index[instance_index.kept]
    rows, true_ious = [], []
    for frame_id, group in kept.groupby("frame_id"):
        labels = ground_truth.labels[frame_number(frame_id)]
        truth_ids = [int(v) for v in np.unique(labels) if v]
        preds = [materialise(instance_masks[i]) > 0 for i in group.instance_id]
        m = np.array([[iou(p, labels == t) for t in truth_ids] for p in preds]).reshape(
            len(preds), len(truth_ids)
        )
        r, c = linear_sum_assignment(-m) if m.size else ([], [])
        pairs = dict(zip(r, c))
        for k, iid in enumerate(group.instance_id):
            j = pairs.get(k)
            ok = j is not None and m[k, j] >= 0.5
            rows.append(
                dict(
                    instance_id=iid,
                    identity=label_of[truth_ids[j]] if ok else None,
                    iou=float(m[k, j]) if j is not None else 0.0,
                )
            )
        matched = {c_: m[r_, c_] for r_, c_ in pairs.items()}
        true_ious += [float(matched.get(j, 0.0)) for j in range(len(truth_ids))]
    return pd.DataFrame(rows, columns=["instance_id", "identity", "iou"]), true_ious


def score_segmentation(
    instance_masks: dict[str, Any], instance_index: pd.DataFrame, layer_index: pd.DataFrame, ground_truth
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Mean IoU of every true character instance in the kept frames (missed ones count 0), detection
    precision/recall at IoU 0.5. Outputs: metrics, and instance_truth (each instance's true identity)."""
    if ground_truth is None:
        return {"ground_truth": False}, pd.DataFrame(columns=["instance_id", "identity", "iou"])
    truth, true_ious = match_to_truth(instance_masks, instance_index, ground_truth)
    for fid in layer_index.frame_id[layer_index.background_only]:  # characters missed in whole frames
        true_ious += [0.0 for v in np.unique(ground_truth.labels[frame_number(fid)]) if v]
    hits = int((truth.iou >= 0.5).sum())
    metrics = {
        "ground_truth": True,
        "backend": str(instance_index.backend.iloc[0]) if len(instance_index) else None,
        "mean_instance_iou": float(np.mean(true_ious)) if true_ious else 0.0,
        "instances_true": len(true_ious),
        "instances_found": int(instance_index.kept.sum()),
        "detection_precision": hits / max(len(truth), 1),
        "detection_recall": hits / max(len(true_ious), 1),
        "background_only_frames": int(layer_index.background_only.sum()),
    }
    return metrics, truth

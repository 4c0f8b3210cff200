"""Preprocessing, second half (a): layered segmentation of each kept frame into RGBA character instances,
the background layer with its hole mask, and the instance masks (`animation_lora.layers`)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pandas as pd

from ...backends.segmentation import make_segmenter
from ...layers.split import LayersParams, layer_shot, layer_tables
from ...shot_cache import ShotCacheParams, ShotResult, per_shot

log = logging.getLogger(__name__)


def segment_layers(frames: dict[str, Any], frame_index: pd.DataFrame, layers: LayersParams,
                   segmentation: dict[str, Any], cache: ShotCacheParams | None = None) -> dict[str, Any]:
    """Split each kept frame, shot by shot, into character instances and a background layer, with the
    `segmentation` backend (shared with the background pipeline). Each finished shot goes to the shot cache
    (`cache`: resume, and one shot in memory at a time). Outputs: `instances` (RGBA crops), `masks`
    (frame-sized), `layers` (RGB, hole pixels black), `holes` (instances grown by `hole_margin` px),
    `instance_index` (per instance: frame, track, box, area, score, backend, kept/reason) and `layer_index`
    (per frame: instances, hole fraction; a shot with an unreadable frame is skipped, its frames listed with
    the reason)."""
    segmenter = functools.cache(lambda: make_segmenter(segmentation))  # loaded once a shot needs it
    kept = frame_index[frame_index.kept & frame_index.frame_id.isin(list(frames))].sort_values("frame")
    ids_of = {int(shot): list(group.frame_id) for shot, group in kept.groupby("shot")}

    def segment(shot: int, images: tuple) -> ShotResult:
        parts = layer_shot(segmenter(), shot, ids_of[shot], list(images), layers)
        return ShotResult(
            images={"instances": {k: v for p in parts for k, v in p["instances"].items()},
                    "masks": {k: v for p in parts for k, v in p["masks"].items()},
                    "layers": {p["frame_row"]["frame_id"]: p["layer"] for p in parts},
                    "holes": {p["frame_row"]["frame_id"]: p["hole"] for p in parts}},
            rows={"instances": [r for p in parts for r in p["rows"]],
                  "frames": [p["frame_row"] for p in parts]})

    result, skipped = per_shot(
        "segment_layers", ((s, tuple(frames[f] for f in ids)) for s, ids in ids_of.items()), segment,
        {"layers": layers, "segmentation": segmentation}, cache,
        f"segment ({segmentation.get('backend')})", total=len(ids_of), ids=ids_of.get)
    skipped_frames = [dict(frame_id=f, shot=s["id"], instances=0, background_only=False, reason=s["reason"])
                      for s in skipped for f in ids_of[s["id"]]]
    instance_index, layer_index = layer_tables(result.rows.get("instances", []),
                                               result.rows.get("frames", []), skipped_frames)
    log.info("%d character instances in %d frames (%d background-only, %d instances dropped)",
             len(instance_index[instance_index.kept]), len(result.rows.get("frames", [])),
             int(layer_index.background_only.sum()), int((~instance_index.kept.astype(bool)).sum()))
    images = {g: result.images.get(g, {}) for g in ("instances", "masks", "layers", "holes")}
    return {**images, "instance_index": instance_index, "layer_index": layer_index}

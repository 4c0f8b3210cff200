"""Preprocessing, second half (a): layered segmentation of each kept frame into RGBA character instances,
the background layer with its hole mask, and the instance masks (`animation_lora.layers`)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pandas as pd

from ...backends.segmentation import make_segmenter
from ...ids import frame_id
from ...image_loop import materialise
from ...layers.pointed import CharacterLook, PointedCharacters, check_inside, pointings
from ...layers.split import LayersParams, layer_shot, layer_tables
from ...shot_cache import ShotCacheParams, ShotResult, per_shot

log = logging.getLogger(__name__)


def segment_layers(frames: dict[str, Any], frame_index: pd.DataFrame, layers: LayersParams,
                   segmentation: dict[str, Any], cache: ShotCacheParams | None = None,
                   pointed: PointedCharacters | None = None) -> dict[str, Any]:
    """Split each kept frame, shot by shot, into character instances and a background layer, with the
    `segmentation` backend (shared with the background pipeline). Each finished shot goes to the shot cache
    (`cache`: resume, and one shot in memory at a time). Outputs: `instances` (RGBA crops), `masks`
    (frame-sized), `layers` (RGB, hole pixels black), `holes` (instances grown by `hole_margin` px),
    `instance_index` (per instance: frame, track, box, area, score, backend, kept/reason) and `layer_index`
    (per frame: instances, hole fraction; a shot with an unreadable frame is skipped, its frames listed with
    the reason). `pointed` (`layers.pointed`): characters a person pointed at, found in every frame by the
    look their pointed frames teach."""
    segmenter = functools.cache(lambda: make_segmenter(segmentation))  # loaded once a shot needs it
    kept = frame_index[frame_index.kept & frame_index.frame_id.isin(list(frames))].sort_values("frame")
    ids_of = {int(shot): list(group.frame_id) for shot, group in kept.groupby("shot")}
    pointed = pointings(pointed)
    look, prompted = pointed_look(pointed, frames, kept, segmenter)

    def segment(shot: int, images: tuple) -> ShotResult:
        parts = layer_shot(segmenter(), shot, ids_of[shot], list(images), layers, look, prompted)
        return ShotResult(
            images={"instances": {k: v for p in parts for k, v in p["instances"].items()},
                    "masks": {k: v for p in parts for k, v in p["masks"].items()},
                    "layers": {p["frame_row"]["frame_id"]: p["layer"] for p in parts},
                    "holes": {p["frame_row"]["frame_id"]: p["hole"] for p in parts}},
            rows={"instances": [r for p in parts for r in p["rows"]],
                  "frames": [p["frame_row"] for p in parts]})

    result, skipped = per_shot(
        "segment_layers", ((s, tuple(frames[f] for f in ids)) for s, ids in ids_of.items()), segment,
        {"layers": layers, "segmentation": segmentation, "pointed": [vars(p) for p in pointed]}, cache,
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


def pointed_look(pointed: list, frames: dict[str, Any], kept: pd.DataFrame, segmenter,
                 ) -> tuple[CharacterLook | None, dict[str, dict[str, Any]]]:
    """The look of the pointed characters (None when nobody pointed) and the masks of the pointed frames
    ({frame id: {name: mask}}, the backend's own answer to the prompt). A pointed frame that is not a kept
    frame is an error naming it and the kept frames nearest to it."""
    if not pointed:
        return None, {}
    where = "preprocessing.pointed.characters"
    numbers, kept_ids = kept.frame.to_numpy(), set(kept.frame_id)
    shown = []
    for k, p in enumerate(pointed):
        if frame_id(p.frame) not in kept_ids:
            near = sorted(numbers, key=lambda n: abs(int(n) - p.frame))[:3]
            raise ValueError(f"{where}[{k}] points at frame {p.frame}, which is not a kept frame (the frames "
                             f"`frame_index` keeps; nearest: {', '.join(str(int(n)) for n in sorted(near))})")
        image = materialise(frames[frame_id(p.frame)])
        check_inside(p, image.shape[:2], f"{where}[{k}]")
        shown.append((image, p))
    seg = segmenter()
    prompted: dict[str, dict[str, Any]] = {}
    for k, ((_, p), mask) in enumerate(zip(shown, seg.prompt_masks(shown))):
        if not mask.any():
            raise ValueError(f"{where}[{k}] (frame {p.frame}): the {seg.name} backend found nothing at the "
                             "box/clicks given; point again (a box around the whole character)")
        prompted.setdefault(frame_id(p.frame), {})[p.name] = mask
    images = {frame_id(p.frame): image for image, p in shown}
    examples = [(images[f], masks) for f, masks in prompted.items()]
    look = CharacterLook.fit(examples)
    log.info("pointed characters: %s, their look taught by %d frames", ", ".join(look.names), len(examples))
    return look, prompted

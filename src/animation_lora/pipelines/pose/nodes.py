"""`pose`: COCO-17 keypoints on every character instance -> actions per track -> skeleton images, a contact
sheet and a pose LoRA dataset per action (`animation_lora.pose`)."""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...backends.embedding import flatten_rgba
from ...backends.pose import make_pose_estimator
from ...clustering import NOISE, contact_sheets
from ...curation import apply_to_clusters, load_curation
from ...ids import frame_number
from ...image_loop import Skip, materialise
from ...lora_dataset import TrainingSet, main_and_each, nothing_to_teach
from ...pose.body import NO_POSE, PoseParams, action_clusters, action_table, keypoints_of, view_facets
from ...pose.openpose import draw_openpose
from ...shot_cache import ShotCacheParams, ShotResult, per_shot

log = logging.getLogger(__name__)


def estimate_poses(character_instances: dict[str, Any], instance_index: pd.DataFrame,
                   frame_index: pd.DataFrame, estimator: dict[str, Any], cache: ShotCacheParams | None = None,
                   ) -> pd.DataFrame:
    """COCO-17 keypoints of every kept instance, in frame pixels (the crop's offset added), through the shot
    cache. An instance without a detectable human pose is a row with `detected` false and the reason.
    Output: pose_keypoints."""
    kept = instance_index[instance_index.kept.astype(bool)] if "kept" in instance_index else instance_index
    kept = kept[kept.instance_id.isin(list(character_instances))]
    if not len(kept):
        raise ValueError("No character instances to estimate poses on: run "
                         "`kedro run --pipelines=preprocessing` "
                         "first (or check why it kept no instance: instance_index's `reason`)")
    model = functools.cache(lambda: make_pose_estimator(estimator))  # loaded once a crop needs it
    offsets = kept.set_index("instance_id")[["x0", "y0"]].astype(float)

    def estimate(iid: str, inputs: tuple) -> ShotResult:
        found = model()(inputs[0])
        if found is None:
            raise Skip(NO_POSE)
        found = found.copy()
        found[:, :2] += inputs[1]
        return ShotResult(rows={"poses": [{"instance_id": iid, "keypoints": found.ravel().tolist()}]})

    name = estimator.get("backend")
    result, skipped = per_shot(
        "poses", ((i, (character_instances[i], tuple(offsets.loc[i]))) for i in kept.instance_id),
        estimate, estimator, cache, f"pose ({name})", len(kept), unit="crop")
    found = {r["instance_id"]: np.array(r["keypoints"], float) for r in result.rows.get("poses", [])}
    times = frame_index.set_index("frame_id").timestamp if "timestamp" in frame_index else {}
    table = kept[["instance_id", "frame_id", "shot", "track"]].copy()
    table["timestamp"] = [float(times.get(f, frame_number(f))) for f in table.frame_id]
    table["detected"] = table.instance_id.isin(list(found))
    table["keypoints"] = [found[i].tolist() if i in found else None for i in table.instance_id]
    reasons = {s["id"]: s["reason"] for s in skipped}
    table["reason"] = [reasons.get(i, "") for i in table.instance_id]
    table["backend"] = name
    log.info("Poses: %d of %d instances (%d skipped)", len(found), len(table), len(skipped))
    return table.reset_index(drop=True)


def label_actions(pose_keypoints: pd.DataFrame, pose: PoseParams) -> pd.DataFrame:
    """Per instance with a full-body pose: motion features over its track, action cluster, action named by
    the rules, confidence; the other instances `unlabeled` with the reason. Output: action_table."""
    table = action_table(pose_keypoints, pose)
    log.info("Actions: %s (%d without a full-body pose)", table.action.value_counts().to_dict(),
             int((table.reason != "").sum()))
    return table


def draw_skeletons(pose_keypoints: pd.DataFrame, instance_index: pd.DataFrame, pose: PoseParams,
                   ) -> dict[str, Image.Image]:
    """OpenPose-style skeleton image of every instance with a pose, the size of its crop (keypoints back in
    crop pixels): the conditioning images for ControlNet-OpenPose. Output: pose_skeletons."""
    boxes = instance_index.set_index("instance_id")
    out = {}
    for _, row in pose_keypoints[pose_keypoints.detected.astype(bool)].iterrows():
        b = boxes.loc[row.instance_id]
        k = keypoints_of(row.keypoints).copy()
        k[:, :2] -= (float(b.x0), float(b.y0))
        size = (int(b.x1 - b.x0), int(b.y1 - b.y0))
        out[row.instance_id] = Image.fromarray(draw_openpose(k, size, pose.skeleton_min_score))
    return out


def action_contact_sheets(character_instances: dict[str, Any], action_table: pd.DataFrame,
                          ) -> dict[str, Image.Image]:
    """One contact sheet per action (and `unlabeled`), most confident instances first."""
    table = action_table.assign(cluster=action_table.action, similarity=action_table.confidence.astype(float))
    return contact_sheets(character_instances, table, "instance_id", "instances")


def build_pose_datasets(character_instances: dict[str, Any], action_table: pd.DataFrame,
                        instance_index: pd.DataFrame, character_clusters: pd.DataFrame, pose: PoseParams,
                        captioning: dict[str, Any], curation: dict | None,
                        ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """A kohya dataset per requested action found on at least `min_images` unambiguous instances (the rules
    name their own track as their cluster; none found: `nothing_to_teach`, with the reason, and no
    per-action sets), captioned `<action> pose, <prefix>, <facing>, <distance>` with no identity word (the
    character clusters' names are excluded); images chosen for viewpoint variety: facing and distance are
    the selection's space. An instance whose own track the rules name otherwise is ambiguous: left out
    (`action_clusters`); then the curation file's decisions about the poses."""
    params, wanted = pose.dataset, pose.actions
    decided = load_curation(curation).poses
    clusters = apply_to_clusters(action_clusters(action_table), "instance_id", decided, "action")
    counts = clusters[clusters.cluster != NOISE].cluster.value_counts()
    found = [a for a in dict.fromkeys([*(decided.names.get(a, a) for a in wanted), *counts.index])
             if counts.get(a, 0) >= params.min_images]
    if not found:  # e.g. a film of close-ups: the pipeline completes, training skips the pose LoRA
        return nothing_to_teach("pose", (
            f"no requested action ({', '.join(wanted)}) on {params.min_images} instances or more (found: "
            f"{counts.to_dict()}; reasons: {action_table.reason.value_counts().to_dict()}); see the action "
            f"contact sheets")), {}
    boxes = instance_index.set_index("instance_id")
    rows = action_table.set_index("instance_id").loc[clusters[clusters.cluster != NOISE].instance_id]
    distance, embeddings = view_facets(rows, boxes.y1 - boxes.y0)
    names = [str(c) for c in set(character_clusters.cluster) - {NOISE}]
    common = dict(clusters=clusters, decisions=decided, embeddings=embeddings, id_column="instance_id",
                  images=character_instances, quality=rows.confidence.astype(float).to_dict(), what="action",
                  params=params, captioning=captioning, exclude=names,
                  prepare=lambda item: flatten_rgba(materialise(item), 255),
                  facts=lambda i: {"facing": rows.at[i, "facing"], "distance": distance[i]})
    return main_and_each(found[0], found, params.min_images, **common)

"""`pose`: COCO-17 keypoints on every character instance -> actions per track -> skeleton images, a contact
sheet and a pose LoRA dataset per action, and scores against the demo's joints and actions."""

from __future__ import annotations

import logging
from dataclasses import field
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...actions import FEATURES, ActionRules, check_actions, cluster_actions, torso_length, track_features
from ...backends.embedding import flatten_rgba
from ...backends.pose import make_pose_estimator
from ...clustering import NOISE, ClusteringParams, contact_sheets
from ...ids import frame_number
from ...image_loop import Skip, map_images, materialise
from ...openpose import draw_openpose
from ...params import block, parse
from ...lora_dataset import DatasetParams, TrainingSet, main_and_each, nothing_to_teach

log = logging.getLogger(__name__)
NO_POSE = "no human pose detected (an animal, a robot, or too small)"
LEGS_HIDDEN = "legs not visible (a close-up or a cropped body): no full-body action"


@block
class PoseParams:
    actions: list[str] = field(default_factory=lambda: ["running", "jumping", "walking", "standing"])
    window: float = 0.5  # seconds either side of an instance for its motion features
    cycle: float = 0.6  # a window shorter than this (s) gives no cadence
    min_leg_score: float = 0.3  # hips, knees and ankles all scored at least this: a full-body action
    clustering: ClusteringParams = field(default_factory=lambda: ClusteringParams(min_cluster_size=4,
                                                                                   min_samples=2))
    rules: ActionRules = field(default_factory=ActionRules)
    skeleton_min_score: float = 0.3  # keypoints below this score are not drawn
    pck_threshold: float = 0.1  # PCK: a joint within this fraction of the true torso length is correct
    estimator: dict[str, Any] = field(default_factory=dict)  # the backend block (its own node parses it)
    dataset: dict[str, Any] = field(default_factory=dict)  # the LoRA dataset block (PoseDatasetParams)


@block
class PoseDatasetParams(DatasetParams):
    min_images: int = 5  # an action found on fewer instances gets no LoRA dataset
    exclude_words: list[str] = field(default_factory=list)


def estimate_poses(character_instances: dict[str, Any], instance_index: pd.DataFrame,
                   frame_index: pd.DataFrame, estimator: dict[str, Any]) -> pd.DataFrame:
    """COCO-17 keypoints of every kept instance, in frame pixels (the crop's offset added). An instance
    without a detectable human pose is a row with `detected` false and the reason. Output: pose_keypoints."""
    kept = instance_index[instance_index.kept.astype(bool)] if "kept" in instance_index else instance_index
    kept = kept[kept.instance_id.isin(list(character_instances))]
    if not len(kept):
        raise ValueError("No character instances to estimate poses on: run "
                         "`kedro run --pipelines=preprocessing` "
                         "first (or check why it kept no instance: instance_index's `reason`)")
    model = make_pose_estimator(estimator)
    offsets = kept.set_index("instance_id")[["x0", "y0"]].astype(float)

    def estimate(iid, image):
        found = model(image)
        if found is None:
            raise Skip(NO_POSE)
        found = found.copy()
        found[:, :2] += offsets.loc[iid].to_numpy()
        return found

    found, skipped = map_images({i: character_instances[i] for i in kept.instance_id}, estimate,
                                f"pose ({model.name})", keyed=True)
    times = frame_index.set_index("frame_id").timestamp if "timestamp" in frame_index else {}
    table = kept[["instance_id", "frame_id", "shot", "track"]].copy()
    table["timestamp"] = [float(times.get(f, frame_number(f))) for f in table.frame_id]
    table["detected"] = table.instance_id.isin(list(found))
    table["keypoints"] = [found[i].ravel().tolist() if i in found else None for i in table.instance_id]
    reasons = {s["id"]: s["reason"] for s in skipped}
    table["reason"] = [reasons.get(i, "") for i in table.instance_id]
    table["backend"] = model.name
    log.info("Poses: %d of %d instances (%d skipped)", len(found), len(table), len(skipped))
    return table.reset_index(drop=True)


def keypoints_of(row) -> np.ndarray:
    return np.asarray(row, np.float32).reshape(17, 3)


def legs_visible(keypoints: Any, min_score: float) -> bool:
    """Whether hips, knees and ankles all score at least `min_score` (a close-up or a body cut by the frame
    edge or a table has no full-body action: the model guesses the legs it cannot see)."""
    return keypoints is not None and float(keypoints_of(keypoints)[11:, 2].min()) >= min_score


def label_actions(pose_keypoints: pd.DataFrame, pose: dict[str, Any]) -> pd.DataFrame:
    """Per instance with a full-body pose: its motion features over its track, the action cluster, the
    action named by the rules and the confidence; the other instances are listed with action `unlabeled`
    and the reason (no pose, or legs not visible). Output: action_table."""
    params = parse(PoseParams, pose, "pose")
    wanted = check_actions(params.actions)
    full = pose_keypoints.detected.astype(bool) & pose_keypoints.keypoints.map(
        lambda k: legs_visible(k, params.min_leg_score))
    found = pose_keypoints[full].reset_index(drop=True)
    parts = []
    for _, group in found.groupby("track"):
        k = np.stack([keypoints_of(v) for v in group.keypoints])
        feats = track_features(k, group.timestamp.to_numpy(), params.window, params.rules.contact,
                               params.cycle)
        parts.append(feats.set_axis(group.index))
    features = pd.concat(parts).sort_index() if parts else pd.DataFrame(columns=list(FEATURES))
    labels = cluster_actions(features, list(found.track), params.clustering, params.rules, wanted)
    table = pd.concat([found[["instance_id", "track"]], labels, features], axis=1)
    table["facing"] = [facing(keypoints_of(v)) for v in found.keypoints]
    table["reason"] = ""
    missing = pose_keypoints[~full]
    reasons = missing.reason.where(~missing.detected.astype(bool), LEGS_HIDDEN)
    rest = pd.DataFrame({"instance_id": missing.instance_id, "track": missing.track, "cluster": NOISE,
                         "action": "unlabeled", "confidence": 0.0, "track_action": "unlabeled",
                         "reason": reasons})
    table = pd.concat([table, rest], ignore_index=True) if len(rest) else table
    log.info("Actions: %s (%d without a full-body pose)", table.action.value_counts().to_dict(), len(rest))
    return table


def facing(k: np.ndarray) -> str:
    """`facing left` / `facing right` / `facing the camera`: the nose's side of the shoulders' midpoint,
    in torso lengths (a profile puts the nose well to one side)."""
    shift = (k[0, 0] - (k[5, 0] + k[6, 0]) / 2) / float(torso_length(k[None, :, :2])[0])
    return "facing right" if shift > 0.15 else "facing left" if shift < -0.15 else "facing the camera"


def draw_skeletons(pose_keypoints: pd.DataFrame, instance_index: pd.DataFrame, pose: dict[str, Any],
                   ) -> dict[str, Image.Image]:
    """OpenPose-style skeleton image of every instance with a pose, the size of its crop (keypoints back in
    crop pixels): the conditioning images for ControlNet-OpenPose. Output: pose_skeletons."""
    params = parse(PoseParams, pose, "pose")
    boxes = instance_index.set_index("instance_id")
    out = {}
    for _, row in pose_keypoints[pose_keypoints.detected.astype(bool)].iterrows():
        b = boxes.loc[row.instance_id]
        k = keypoints_of(row.keypoints).copy()
        k[:, :2] -= (float(b.x0), float(b.y0))
        size = (int(b.x1 - b.x0), int(b.y1 - b.y0))
        out[row.instance_id] = Image.fromarray(draw_openpose(k, size, params.skeleton_min_score))
    return out


def action_contact_sheets(character_instances: dict[str, Any], action_table: pd.DataFrame,
                          ) -> dict[str, Image.Image]:
    """One contact sheet per action (and `unlabeled`), most confident instances first."""
    table = action_table.assign(cluster=action_table.action, similarity=action_table.confidence.astype(float))
    return contact_sheets(character_instances, table, "instance_id", "instances")


def build_pose_datasets(character_instances: dict[str, Any], action_table: pd.DataFrame,
                        instance_index: pd.DataFrame, character_clusters: pd.DataFrame, pose: dict[str, Any],
                        dataset: dict[str, Any], captioning: dict[str, Any],
                        ) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """A kohya dataset per requested action found on at least `min_images` unambiguous instances (the rules
    name their own track as their cluster; none found: `nothing_to_teach`, with the reason, and no per-action
    sets), captioned
    `<action> pose, <prefix>, <facing>, <distance>` with no identity word (the character clusters' names
    are excluded); images chosen for viewpoint variety: facing and distance are the selection's space."""
    params = parse(PoseDatasetParams, dataset, "pose.dataset")
    wanted = parse(PoseParams, pose, "pose").actions
    # an instance whose own track the rules name otherwise than its cluster is ambiguous: left out
    table = action_table
    labelled = table[table.action.isin(wanted) & (table.track_action == table.action)]
    counts = labelled.action.value_counts()
    found = [a for a in wanted if counts.get(a, 0) >= params.min_images]
    if not found:  # e.g. a film of close-ups: the pipeline completes, training skips the pose LoRA
        return nothing_to_teach("pose", (
            f"no requested action ({', '.join(wanted)}) on {params.min_images} instances or more (found: "
            f"{counts.to_dict()}; reasons: {action_table.reason.value_counts().to_dict()}); see the action "
            f"contact sheets")), {}
    heights = (instance_index.set_index("instance_id").y1 - instance_index.set_index("instance_id").y0)
    frame_h = float(max(heights.max(), 1))  # the largest instance: distances are relative to it
    rows = labelled.set_index("instance_id")
    distance = {i: "full body" if heights[i] / frame_h >= 0.6 else "distant" for i in rows.index}
    side = {"facing left": -1.0, "facing right": 1.0}
    embeddings = pd.DataFrame({"instance_id": rows.index, "embedding": [
        np.array([side.get(rows.at[i, "facing"], 0.0), np.log(max(heights[i], 1.0) / frame_h)], np.float32)
        for i in rows.index]})
    names = [str(c) for c in set(character_clusters.cluster) - {NOISE}]
    clusters = pd.DataFrame({"instance_id": rows.index, "cluster": rows.action.to_numpy()})
    common = dict(clusters=clusters, embeddings=embeddings, id_column="instance_id",
                  images=character_instances, quality=rows.confidence.astype(float).to_dict(), what="action",
                  params=params, captioning=captioning, exclude=names,
                  prepare=lambda item: flatten_rgba(materialise(item), 255),
                  facts=lambda i: {"facing": rows.at[i, "facing"], "distance": distance[i]})
    return main_and_each(found[0], found, params.min_images, **common)


def score_poses(pose_keypoints: pd.DataFrame, action_table: pd.DataFrame, instance_truth: pd.DataFrame,
                pose: dict[str, Any], ground_truth) -> dict[str, Any]:
    """PCK (a joint within `pck_threshold` x the true torso length of the true joint, over the true visible
    joints of instances matched to a true character; an undetected instance counts as all joints missed)
    and action accuracy against the demo's actions; counts either way. Output: pose_metrics."""
    params = parse(PoseParams, pose, "pose")
    detected = pose_keypoints.detected.astype(bool)
    counts = {"instances": int(len(pose_keypoints)), "detected": int(detected.sum()),
              "skipped": int((~detected).sum()), "backend": str(pose_keypoints.backend.iloc[0]),
              "legs_not_visible": int((action_table.reason == LEGS_HIDDEN).sum()),
              "actions": {str(k): int(v) for k, v in action_table.action.value_counts().items()}}
    if ground_truth is None:
        return {"ground_truth": False, **counts}
    truth = pose_keypoints.merge(instance_truth, on="instance_id").dropna(subset=["identity"])
    gt = ground_truth.instances.set_index(["frame", "character"])
    hits = total = 0
    true_action, per_action = {}, {}
    for _, row in truth.iterrows():
        key = (frame_number(row.frame_id), row.identity)
        if key not in gt.index:
            continue
        joints = np.asarray(gt.loc[key, "joints"], np.float32).reshape(17, 3)
        visible = joints[:, 2] > 0
        true_action[row.instance_id] = gt.loc[key, "action"]
        if row.detected:
            dist = np.linalg.norm(keypoints_of(row.keypoints)[:, :2] - joints[:, :2], axis=1)
            ok = int((visible & (dist < params.pck_threshold * torso_length(joints[None, :, :2])[0])).sum())
        else:
            ok = 0
        hits, total = hits + ok, total + int(visible.sum())
        tally = per_action.setdefault(gt.loc[key, "action"], [0, 0])
        tally[0], tally[1] = tally[0] + ok, tally[1] + int(visible.sum())
    labels = action_table.set_index("instance_id").action
    scored = [i for i in true_action if i in labels.index]
    correct = [labels[i] == true_action[i] for i in scored]
    return {"ground_truth": True, **counts, "instances_scored": len(scored),
            f"pck@{params.pck_threshold}": hits / total if total else 0.0,
            "pck_by_action": {a: h / t for a, (h, t) in sorted(per_action.items()) if t},
            "action_accuracy": float(np.mean(correct)) if correct else 0.0,
            "action_accuracy_by_action": {a: float(np.mean([c for c, i in zip(correct, scored)
                                                            if true_action[i] == a]))
                                          for a in sorted(set(true_action[i] for i in scored))}}

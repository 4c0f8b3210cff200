"""What a body's keypoints say: whether the whole body is seen (a full-body action needs the legs), which
way it faces, how far it is; the action table of a film's instances."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import numpy as np
import pandas as pd

from ..clustering import NOISE, ClusteringParams
from ..lora_dataset import DatasetParams
from ..params import Count, block
from .actions import (
    FEATURES,
    UNLABELED,
    ActionRules,
    check_actions,
    cluster_actions,
    torso_length,
    track_features,
)

NO_POSE = "no human pose detected (an animal, a robot, or too small)"
LEGS_HIDDEN = "legs not visible (a close-up or a cropped body): no full-body action"


@block
class PoseDatasetParams(DatasetParams):
    min_images: Count = 5  # an action found on fewer instances gets no LoRA dataset
    exclude_words: list[str] = field(default_factory=list)


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
    estimator: dict[str, Any] = field(default_factory=dict)  # the pose backend's block (make_pose_estimator)
    dataset: PoseDatasetParams = field(default_factory=PoseDatasetParams)  # the pose LoRA datasets


def keypoints_of(row) -> np.ndarray:
    return np.asarray(row, np.float32).reshape(17, 3)


def legs_visible(keypoints: Any, min_score: float) -> bool:
    """Whether hips, knees and ankles all score at least `min_score` (a close-up or a body cut by the frame
    edge or a table has no full-body action: the model guesses the legs it cannot see)."""
    return keypoints is not None and float(keypoints_of(keypoints)[11:, 2].min()) >= min_score


def facing(k: np.ndarray) -> str:
    """`facing left` / `facing right` / `facing the camera`: the nose's side of the shoulders' midpoint,
    in torso lengths (a profile puts the nose well to one side)."""
    shift = (k[0, 0] - (k[5, 0] + k[6, 0]) / 2) / float(torso_length(k[None, :, :2])[0])
    return "facing right" if shift > 0.15 else "facing left" if shift < -0.15 else "facing the camera"


def action_table(pose_keypoints: pd.DataFrame, params: PoseParams) -> pd.DataFrame:
    """Per instance with a full-body pose: its motion features over its track, the action cluster, the
    action named by the rules and the confidence, and its facing; the other instances with action
    `unlabeled` and the reason (no pose, or legs not visible)."""
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
                         "action": UNLABELED, "confidence": 0.0, "track_action": UNLABELED,
                         "facing": "", "reason": reasons})  # no keypoints: no facing to tell
    return pd.concat([table, rest], ignore_index=True) if len(rest) else table


def action_clusters(table: pd.DataFrame) -> pd.DataFrame:
    """The action table as clusters (instance_id, cluster, assigned_by): an instance whose action its own
    track confirms is a member of that action; the others are noise with why (their reason, no rule, or
    the other action their track shows). What the pose datasets and the curation app both start from."""
    sure = (table.action != UNLABELED) & (table.track_action == table.action)
    why = [("labelled" if ok else reason if isinstance(reason, str) and reason else
            "no action rule applies" if action == UNLABELED else f"ambiguous: its track shows {track}")
           for ok, reason, action, track in zip(sure, table.reason, table.action, table.track_action,
                                                strict=True)]
    return pd.DataFrame({"instance_id": table.instance_id.to_numpy(),
                         "cluster": np.where(sure, table.action, NOISE), "assigned_by": why})


def view_facets(rows: pd.DataFrame, heights: pd.Series) -> tuple[dict[str, str], pd.DataFrame]:
    """Each instance's distance tag (`full body` at >= 0.6 of the largest instance's height, else `distant`)
    and a 2-d vector of its view (facing side, log relative height): what a pose dataset spreads over."""
    frame_h = float(max(heights.max(), 1))  # the largest instance: distances are relative to it
    distance = {i: "full body" if heights[i] / frame_h >= 0.6 else "distant" for i in rows.index}
    side = {"facing left": -1.0, "facing right": 1.0}
    vectors = pd.DataFrame({"instance_id": rows.index, "embedding": [
        np.array([side.get(rows.at[i, "facing"], 0.0), np.log(max(heights[i], 1.0) / frame_h)], np.float32)
        for i in rows.index]})
    return distance, vectors

"""Poses against the demo's joints and actions: PCK (torso-normalised) and action accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..ids import frame_number
from ..pose.actions import torso_length
from ..pose.body import LEGS_HIDDEN, PoseParams, keypoints_of


def score_poses(pose_keypoints: pd.DataFrame, action_table: pd.DataFrame, instance_truth: pd.DataFrame,
                pose: PoseParams, ground_truth) -> dict[str, Any]:
    """PCK (a joint within `pck_threshold` x the true torso length of the true joint, over the true visible
    joints of instances matched to a true character; an undetected instance counts as all joints missed)
    and action accuracy against the demo's actions; counts either way. Output: pose_metrics."""
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
            ok = int((visible & (dist < pose.pck_threshold * torso_length(joints[None, :, :2])[0])).sum())
        else:
            ok = 0
        hits, total = hits + ok, total + int(visible.sum())
        tally = per_action.setdefault(gt.loc[key, "action"], [0, 0])
        tally[0], tally[1] = tally[0] + ok, tally[1] + int(visible.sum())
    labels = action_table.set_index("instance_id").action
    scored = [i for i in true_action if i in labels.index]
    correct = [labels[i] == true_action[i] for i in scored]
    return {"ground_truth": True, **counts, "instances_scored": len(scored),
            f"pck@{pose.pck_threshold}": hits / total if total else 0.0,
            "pck_by_action": {a: h / t for a, (h, t) in sorted(per_action.items()) if t},
            "action_accuracy": float(np.mean(correct)) if correct else 0.0,
            "action_accuracy_by_action": {a: float(np.mean([c for c, i in zip(correct, scored)
                                                            if true_action[i] == a]))
                                          for a in sorted(set(true_action[i] for i in scored))}}



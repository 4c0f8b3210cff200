"""Segmentation against the demo's true masks: instances matched by IoU (Hungarian), mean IoU, detection
precision and recall; each instance's true identity for the later scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ..ids import frame_number
from ..image_loop import materialise
from ..metrics import iou


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



"""Frames against the demo's ground truth: shot coverage of the kept frames and shot-cut precision/recall."""

from __future__ import annotations

from typing import Any

import pandas as pd


def score_frames(frame_index: pd.DataFrame, ground_truth) -> dict[str, Any]:
    """Against the demo's ground truth: shot coverage of the kept frames and shot-cut precision/recall."""
    if ground_truth is None:
        return {"ground_truth": False}
    gt = ground_truth.frames
    readable = frame_index[frame_index.readable]
    kept = frame_index[frame_index.kept]
    true_cuts = set(gt.index[gt.first_of_shot])
    found_cuts = set(readable.frame[readable.cut])  # sampled frames always include every shot start
    covered = set(gt.loc[kept.frame, "shot"])
    return {
        "ground_truth": True,
        "frames_in_film": int(len(gt)),
        "frames_kept": int(len(kept)),
        "shots": int(gt.shot.nunique()),
        "shot_coverage": len(covered) / gt.shot.nunique(),
        "cut_precision": len(found_cuts & true_cuts) / max(len(found_cuts), 1),
        "cut_recall": len(found_cuts & true_cuts) / max(len(true_cuts), 1),
        "shot_id_matches_truth": bool((readable.shot.values == gt.loc[readable.frame, "shot"].values).all()),
    }



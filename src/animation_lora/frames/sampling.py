"""Which frames of each shot are looked at, and what is measured on each: perceptual hash, sharpness and
exposure."""

from __future__ import annotations

from typing import Annotated, Any

import cv2
import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field

from ..ids import frame_id
from ..params import block


@block
class FrameSampling:
    every_n_frames: Annotated[int, Field(ge=1)] = 2  # every n-th frame of each shot (and each shot's first)
    target_fps: Annotated[float, Field(gt=0)] | None = None  # or: a frame rate (overrides every_n_frames)
    cut_threshold: Annotated[float, Field(ge=0)] = 27.0  # PySceneDetect ContentDetector threshold
    min_shot_frames: Annotated[int, Field(ge=1)] = 2  # shortest shot the cut detector accepts, in frames


def sampling_step(sampling: FrameSampling, fps: float) -> int:
    """Every n-th frame, or the step that gives `target_fps`."""
    if sampling.target_fps:
        return max(1, round(fps / sampling.target_fps))
    return sampling.every_n_frames or 1


def chosen_frames(frame_log: pd.DataFrame, step: int) -> set[int]:
    """Every `step`-th readable frame of each shot, counted from the shot's first (always chosen)."""
    readable = frame_log[frame_log.readable]
    position = readable.groupby("shot").cumcount()
    return set(readable.frame[(position % step) == 0])


def measure(image: np.ndarray, hash_size: int) -> dict[str, Any]:
    """Perceptual hash, sharpness (variance of the Laplacian) and exposure of one frame."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return dict(
        phash=str(imagehash.phash(Image.fromarray(image), hash_size=hash_size)),
        sharpness=float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        brightness=float(grey.mean()),
        clipped=float(((grey <= 5) | (grey >= 250)).mean()),
    )


def sampled_index(frame_log: pd.DataFrame, chosen: set[int], measures: dict[str, dict],
                  skipped: list[dict[str, str]]) -> pd.DataFrame:
    """The frame index: the chosen frames with their measures, and the unreadable or unmeasurable ones with
    the reason (`kept` false)."""
    index = frame_log[frame_log.frame.isin(chosen) | ~frame_log.readable].copy()
    index.insert(0, "frame_id", index.frame.map(frame_id))
    index = index.join(pd.DataFrame.from_dict(measures, orient="index"), on="frame_id")
    index["kept"] = index.readable & index.frame_id.isin(measures)
    index["reason"] = np.where(index.readable, "", "unreadable: " + index.problem)
    for s in skipped:
        index.loc[index.frame_id == s["id"], "reason"] = "unmeasurable: " + s["reason"]
    return index.reset_index(drop=True)

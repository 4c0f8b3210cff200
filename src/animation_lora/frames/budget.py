"""The sampling budget: a feature film's tens of thousands of candidate frames cut down to a dataset-sized
set before the expensive stages (segmentation, inpainting, pose, faces), every shot represented, long shots
not dominating, the sharpest frames of each spread over its length."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..params import Count, block

log = logging.getLogger(__name__)


@block
class FrameBudget:
    # the most frames kept for the whole film (null: no budget). 3,000 keeps ~2 per shot of a 90-minute
    # feature (~1,500 shots), ~300+ instances for each main character (the studio target size), and
    # segmentation + inpainting of 3,000 frames in about an hour on one GPU; the demo and a clip keep all
    max_frames: Count | None = 3000


def shot_quotas(candidates: pd.Series, budget: int) -> pd.Series:
    """Frames each shot keeps (`candidates`: frames per shot): the same quota q for every shot, a shot with
    fewer candidates keeping them all, q the largest that fits the budget (max-min fair). When there are
    more shots than the budget, one frame each for `budget` shots spread evenly over the film."""
    if candidates.sum() <= budget:
        return candidates.copy()
    if len(candidates) >= budget:
        chosen = candidates.index[np.linspace(0, len(candidates) - 1, budget).round().astype(int)]
        return pd.Series(candidates.index.isin(chosen).astype(int), index=candidates.index)
    low, high = 1, int(candidates.max())
    while low < high:  # the largest quota whose total fits
        q = (low + high + 1) // 2
        low, high = (q, high) if candidates.clip(upper=q).sum() <= budget else (low, q - 1)
    quotas = candidates.clip(upper=low)
    spare = budget - int(quotas.sum())  # hand what is left, one each, to the longest shots still cut
    for shot in candidates[candidates > quotas].sort_values(ascending=False, kind="stable").index[:spare]:
        quotas[shot] += 1
    return quotas


def spread_sharpest(frames: pd.DataFrame, quota: int) -> list[int]:
    """Row labels of `quota` frames of one shot (in film order): the shot cut into `quota` equal stretches
    of time, the sharpest frame of each."""
    stretches = np.array_split(np.arange(len(frames)), quota)
    return [frames.index[s[np.argmax(frames.sharpness.to_numpy(float)[s])]] for s in stretches if len(s)]


def apply_budget(index: pd.DataFrame, budget: FrameBudget) -> pd.DataFrame:
    """The frame index with the frames over `max_frames` no longer kept, each with the reason."""
    index = index.copy()
    kept = index[index.kept.astype(bool)].sort_values("frame")
    if budget.max_frames is None or len(kept) <= budget.max_frames:
        return index
    quotas = shot_quotas(kept.groupby("shot").size(), budget.max_frames)
    chosen = [r for shot, frames in kept.groupby("shot") if quotas[shot]
              for r in spread_sharpest(frames, int(quotas[shot]))]
    cut = kept.index.difference(chosen)
    for shot, rows in kept.loc[cut].groupby("shot").groups.items():
        index.loc[rows, "kept"] = False
        index.loc[rows, "reason"] = (f"over the frame budget (max_frames {budget.max_frames}: shot {shot} "
                                     f"keeps {int(quotas[shot])} of {int((kept.shot == shot).sum())})")
    log.info("Frame budget: kept %d of %d frames (max_frames %d; %d shots, each at most %d)", len(chosen),
             len(kept), budget.max_frames, len(quotas), int(quotas.max()))
    return index

"""The quality filter: frames too small, badly exposed, or blurred (below an absolute floor or below a share
of the median sharpness of their shot) are dropped with the reason."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from pydantic import Field

from ..params import block


@block
class Quality:
    min_width: Annotated[int, Field(ge=0)] = 128
    min_height: Annotated[int, Field(ge=0)] = 72
    min_sharpness: Annotated[float, Field(ge=0)] = 5.0  # variance of the Laplacian, absolute floor
    blur_ratio: Annotated[float, Field(ge=0)] = 0.4  # ... and relative to the median sharpness of the shot
    dark_mean: Annotated[float, Field(ge=0, le=255)] = 20
    bright_mean: Annotated[float, Field(ge=0, le=255)] = 240
    max_clipped_fraction: Annotated[float, Field(ge=0, le=1)] = 0.6


def why_dropped(r, q: Quality, limit: float) -> str:
    """The reason a frame (a row of the frame index) fails the filter, or ""."""
    if r.width < q.min_width or r.height < q.min_height:
        return f"too small ({r.width}x{r.height} < {q.min_width}x{q.min_height})"
    if r.brightness < q.dark_mean:
        return f"under-exposed (mean {r.brightness:.0f} < {q.dark_mean:g})"
    if r.brightness > q.bright_mean:
        return f"over-exposed (mean {r.brightness:.0f} > {q.bright_mean:g})"
    if r.clipped > q.max_clipped_fraction:
        return f"clipped ({r.clipped:.0%} of pixels black or white)"
    if r.sharpness < limit:
        return f"blurred (sharpness {r.sharpness:.1f} < {limit:.1f})"
    return ""


def apply_quality(index: pd.DataFrame, q: Quality) -> pd.DataFrame:
    """The frame index with the frames failing the filter no longer kept; the rest say `kept`. Dropping every
    frame is an error counting the reasons."""
    index = index.copy()
    candidates = int(index.kept.sum())
    shot_median = index[index.kept].groupby("shot").sharpness.median()
    for row in index.index[index.kept]:
        r = index.loc[row]
        reason = why_dropped(r, q, max(q.min_sharpness, q.blur_ratio * shot_median[r.shot]))
        if reason:
            index.at[row, "kept"], index.at[row, "reason"] = False, reason
    index.loc[index.kept, "reason"] = "kept"
    if candidates and not index.kept.any():
        reasons = index.reason[index.readable].str.split(" [(]", regex=True).str[0].value_counts()
        raise ValueError(
            f"The quality filter (preprocessing.quality) dropped all {candidates} frames: "
            + ", ".join(f"{n} {why}" for why, n in reasons.items())
            + "; see frame_index for each frame's reason, or relax preprocessing.quality"
        )
    return index

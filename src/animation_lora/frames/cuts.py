"""The frame log: every source frame of a film with its timestamp, size, readability and whether a shot cut
(PySceneDetect's content detector) starts there."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scenedetect.common import FrameTimecode
from scenedetect.detectors import ContentDetector

from ..datasets import Film
from ..image_loop import progress
from .sampling import FrameSampling

log = logging.getLogger(__name__)


def frame_log(film: Film, sampling: FrameSampling) -> pd.DataFrame:
    """Decode the whole film once: a row per source frame (unreadable ones with their problem), its shot."""
    detector = ContentDetector(threshold=sampling.cut_threshold, min_scene_len=sampling.min_shot_frames)
    rows, size = [], None
    for f in progress(film.frames(), "ingest", "frame", film.expected_frames() or None):
        row = dict(frame=f.index, timestamp=f.timestamp, name=f.name, readable=f.image is not None,
                   problem=f.problem, width=0, height=0, cut=False)
        if f.image is not None and size is not None and f.image.shape[:2] != size:
            got, want = f.image.shape[:2], size  # PySceneDetect compares frames of one size only
            row["readable"], row["problem"] = False, (
                f"frame size {got[1]}x{got[0]} differs from the film's {want[1]}x{want[0]}"
            )
        elif f.image is not None:
            size = f.image.shape[:2]
            row["height"], row["width"] = f.image.shape[:2]
            bgr = np.ascontiguousarray(f.image[..., ::-1])
            cuts = detector.process_frame(FrameTimecode(f.index, fps=film.fps), bgr)
            row["cut"] = not any(r["readable"] for r in rows) or any(
                int(c.frame_num) == f.index for c in cuts
            )
        rows.append(row)
    if not rows:
        raise ValueError(f"Film '{film.path}' has no frames (an empty folder or a video without frames)")
    table = pd.DataFrame(rows)
    bad = table[~table.readable]
    if len(bad) == len(table):
        raise ValueError(
            f"Film '{film.path}': none of its {len(bad)} frames is readable, e.g. "
            + "; ".join(f"'{r.name or r.frame}': {r.problem}" for r in bad.head(3).itertuples())
        )
    if len(bad):
        log.warning(
            "Film '%s': skipped %d unreadable frames (see frame_log), e.g. %s", film.path, len(bad),
            "; ".join(f"'{r.name or r.frame}': {r.problem}" for r in bad.head(3).itertuples()),
        )
    table["shot"] = (table["cut"].cumsum() - 1).clip(lower=0)
    return table

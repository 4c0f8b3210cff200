"""Preprocessing, first half: film -> sampled frames -> deduplicated -> quality-filtered, with an index
that says for every candidate frame whether it was kept and why not."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...datasets import Film
from ...frames.cuts import frame_log
from ...frames.dedup import Dedup, mark_duplicates
from ...frames.quality import Quality, apply_quality
from ...frames.sampling import FrameSampling, chosen_frames, measure, sampled_index, sampling_step
from ...ids import frame_id
from ...image_loop import map_images, materialise
from ...imaging import contact_sheet

log = logging.getLogger(__name__)


def ingest(film: Film, sampling: FrameSampling) -> pd.DataFrame:
    """Decode the whole film once: per source frame its timestamp, size, readability and whether a shot cut
    starts there, and its shot. Output: `frame_log`."""
    return frame_log(film, sampling)


def sample_frames(film: Film, frame_log: pd.DataFrame, sampling: FrameSampling, dedup: Dedup,
                  ) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Keep every n-th readable frame of each shot (or the step that gives `target_fps`), always the
    first frame of a shot, and measure each. Outputs: candidate frames and the growing frame index
    (unreadable frames are in it with their reason)."""
    step = sampling_step(sampling, film.fps)
    chosen = chosen_frames(frame_log, step)
    frames = {frame_id(f.index): f.image for f in film.frames() if f.index in chosen and f.image is not None}
    measures, skipped = map_images(frames, lambda im: measure(im, dedup.hash_size), "measure frames")
    log.info("Sampled %d of %d frames (step %d, %d shots)", len(frames), len(frame_log), step,
             frame_log.shot.nunique())
    return {k: v for k, v in frames.items() if k in measures}, sampled_index(frame_log, chosen, measures,
                                                                             skipped)


def deduplicate(frames: dict[str, np.ndarray], index: pd.DataFrame, dedup: Dedup,
                ) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Group near-duplicates (perceptual-hash Hamming distance <= max_hamming to a group's first frame,
    anywhere in the film) and keep the sharpest frame of each group."""
    index = mark_duplicates(index, dedup.max_hamming)
    kept = set(index.frame_id[index.kept])
    log.info("Deduplication kept %d of %d frames", len(kept), len(frames))
    return {k: v for k, v in frames.items() if k in kept}, index


def filter_quality(frames: dict[str, np.ndarray], index: pd.DataFrame, quality: Quality,
                   ) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Drop frames that are too small, badly exposed, or blurred (absolute floor, or `blur_ratio` x the
    median sharpness of the kept frames of the same shot). Outputs: `frames` and `frame_index`."""
    index = apply_quality(index, quality)
    kept = set(index.frame_id[index.kept])
    log.info("Quality filter kept %d of %d frames", len(kept), len(frames))
    return {k: v for k, v in frames.items() if k in kept}, index


def frames_contact_sheet(frames: dict[str, Any], frame_index: pd.DataFrame,
                         max_frames: int = 48) -> Image.Image:
    """A picture of what was kept: up to max_frames kept frames spread over the film, with shot ids."""
    kept = frame_index[frame_index.kept]
    if len(kept):
        kept = kept.iloc[np.linspace(0, len(kept) - 1, min(max_frames, len(kept))).astype(int)]
    images = [materialise(frames[i]) for i in kept.frame_id]
    captions = [f"{i} shot {s}" for i, s in zip(kept.frame_id, kept.shot)]
    title = f"{int(frame_index.kept.sum())} kept frames"
    return Image.fromarray(contact_sheet(images, captions, thumb=192, cols=6, title=title))

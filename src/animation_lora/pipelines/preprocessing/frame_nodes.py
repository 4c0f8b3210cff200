"""Preprocessing, first half: film -> sampled frames -> deduplicated -> quality-filtered, with an index
that says for every candidate frame whether it was kept and why not."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ...datasets import Film
from ...datasets.film import FilmFrames
from ...frames.budget import FrameBudget, apply_budget
from ...frames.cuts import frame_log
from ...frames.dedup import Dedup, mark_duplicates
from ...frames.quality import Quality, apply_quality
from ...frames.sampling import FrameSampling, chosen_frames, measure, sampled_index, sampling_step
from ...ids import frame_id
from ...image_loop import map_images, materialise
from ...imaging import contact_sheet
from ...runs import film_identity
from ...shot_cache import ShotCacheParams, cached_table, shot_key

log = logging.getLogger(__name__)


def ingest(film: Film, sampling: FrameSampling, cache: ShotCacheParams | None = None) -> pd.DataFrame:
    """Decode the whole film once: per source frame its timestamp, size, readability and whether a shot cut
    starts there, and its shot (kept in the shot cache: a restarted run does not decode it again). Output:
    `frame_log`."""
    return cached_table("ingest", (film_identity(film.path), sampling), cache,
                        lambda: frame_log(film, sampling))


def measure_frames(film: Film, frame_log: pd.DataFrame, sampling: FrameSampling, dedup: Dedup,
                   cache: ShotCacheParams | None = None) -> pd.DataFrame:
    """Choose every n-th readable frame of each shot (or the step that gives `target_fps`), always the
    first frame of a shot, and measure each as the film is decoded: perceptual hash, sharpness, exposure.
    No frame is kept in memory; the table is kept in the shot cache. Output: the frame index so far
    (unreadable frames with their reason)."""
    step = sampling_step(sampling, film.fps)
    chosen = chosen_frames(frame_log, step)

    def measure_all() -> pd.DataFrame:
        measures, skipped = map_images(((frame_id(n), image) for n, image in film.images(chosen)),
                                       lambda im: measure(im, dedup.hash_size), "measure frames", "frame",
                                       total=len(chosen))
        return sampled_index(frame_log, chosen, measures, skipped)

    index = cached_table("measure_frames", (film_identity(film.path), sorted(chosen), dedup.hash_size), cache,
                         measure_all)
    log.info("Sampled %d of %d frames (step %d, %d shots)", int(index.kept.sum()), len(frame_log), step,
             frame_log.shot.nunique())
    return index


def deduplicate(index: pd.DataFrame, dedup: Dedup) -> pd.DataFrame:
    """Group near-duplicates (perceptual-hash Hamming distance <= max_hamming to a group's first frame,
    anywhere in the film) and keep the sharpest frame of each group."""
    before = int(index.kept.sum())
    index = mark_duplicates(index, dedup.max_hamming)
    log.info("Deduplication kept %d of %d frames", int(index.kept.sum()), before)
    return index


def filter_quality(index: pd.DataFrame, quality: Quality) -> pd.DataFrame:
    """Drop frames that are too small, badly exposed, or blurred (absolute floor, or `blur_ratio` x the
    median sharpness of the kept frames of the same shot)."""
    before = int(index.kept.sum())
    index = apply_quality(index, quality)
    log.info("Quality filter kept %d of %d frames", int(index.kept.sum()), before)
    return index


def keep_within_budget(index: pd.DataFrame, budget: FrameBudget) -> pd.DataFrame:
    """At most `max_frames` frames for the whole film: per-shot quotas, the sharpest frames of each shot
    spread over it (`frames.budget`). Output: `frame_index`."""
    return apply_budget(index, budget)


def extract_frames(film: Film, frame_index: pd.DataFrame, cache: ShotCacheParams | None = None) -> FilmFrames:
    """The kept frames, decoded from the film once more as the `frames` dataset saves them, one at a time
    (through the shot cache: a restarted run decodes only the frames it does not have). Output: `frames`."""
    kept = frame_index[frame_index.kept.astype(bool)]
    folder = None
    if cache is not None and cache.dir:
        folder = Path(cache.dir) / "frames" / shot_key("frames", film_identity(film.path), ())[:32]
    return FilmFrames(film, dict(zip(kept.frame.astype(int), kept.frame_id)), folder)


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

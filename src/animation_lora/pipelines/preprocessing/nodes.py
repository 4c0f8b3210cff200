"""Preprocessing, first half: film -> sampled frames -> deduplicated -> quality-filtered, with an index
that says for every candidate frame whether it was kept and why not."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import cv2
import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field
from scenedetect.common import FrameTimecode
from scenedetect.detectors import ContentDetector

from ...datasets import Film
from ...ids import frame_id
from ...imaging import contact_sheet
from ...image_loop import map_images, materialise, progress
from ...params import block, parse

log = logging.getLogger(__name__)


@block
class SamplingParams:
    every_n_frames: Annotated[int, Field(ge=1)] = 2  # every n-th frame of each shot (and each shot's first)
    target_fps: Annotated[float, Field(gt=0)] | None = None  # or: a frame rate (overrides every_n_frames)
    cut_threshold: Annotated[float, Field(ge=0)] = 27.0  # PySceneDetect ContentDetector threshold
    min_shot_frames: Annotated[int, Field(ge=1)] = 2  # shortest shot the cut detector accepts, in frames


@block
class DedupParams:
    hash_size: Annotated[int, Field(ge=2)] = 8  # perceptual hash of hash_size^2 bits
    max_hamming: Annotated[int, Field(ge=0)] = 2  # this close to a group's first frame: near-duplicates


@block
class QualityParams:
    min_width: Annotated[int, Field(ge=0)] = 128
    min_height: Annotated[int, Field(ge=0)] = 72
    min_sharpness: Annotated[float, Field(ge=0)] = 5.0  # variance of the Laplacian, absolute floor
    blur_ratio: Annotated[float, Field(ge=0)] = 0.4  # ... and relative to the median sharpness of the shot
    dark_mean: Annotated[float, Field(ge=0, le=255)] = 20
    bright_mean: Annotated[float, Field(ge=0, le=255)] = 240
    max_clipped_fraction: Annotated[float, Field(ge=0, le=1)] = 0.6


def ingest(film: Film, sampling: dict[str, Any]) -> pd.DataFrame:
    """Decode the whole film once: per source frame its timestamp, size, readability and whether a
    shot cut (PySceneDetect's content detector) starts there. Output: `frame_log`."""
    params = parse(SamplingParams, sampling, "preprocessing.sampling")
    detector = ContentDetector(threshold=params.cut_threshold, min_scene_len=params.min_shot_frames)
    rows, size = [], None
    for f in progress(film.frames(), "ingest", "frame"):
        row = dict(
            frame=f.index,
            timestamp=f.timestamp,
            name=f.name,
            readable=f.image is not None,
            problem=f.problem,
            width=0,
            height=0,
            cut=False,
        )
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
    log_table = pd.DataFrame(rows)
    bad = log_table[~log_table.readable]
    if len(bad) == len(log_table):
        raise ValueError(
            f"Film '{film.path}': none of its {len(bad)} frames is readable, e.g. "
            + "; ".join(f"'{r.name or r.frame}': {r.problem}" for r in bad.head(3).itertuples())
        )
    if len(bad):
        log.warning(
            "Film '%s': skipped %d unreadable frames (see frame_log), e.g. %s", film.path, len(bad),
            "; ".join(f"'{r.name or r.frame}': {r.problem}" for r in bad.head(3).itertuples()),
        )
    log_table["shot"] = (log_table["cut"].cumsum() - 1).clip(lower=0)
    return log_table


def measure(image: np.ndarray, hash_size: int) -> dict[str, Any]:
    """Perceptual hash, sharpness (variance of the Laplacian) and exposure of one frame."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return dict(
        phash=str(imagehash.phash(Image.fromarray(image), hash_size=hash_size)),
        sharpness=float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        brightness=float(grey.mean()),
        clipped=float(((grey <= 5) | (grey >= 250)).mean()),
    )


def sample_frames(
    film: Film,
    frame_log: pd.DataFrame,
    sampling: dict[str, Any],
    dedup: dict[str, Any],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Keep every n-th readable frame of each shot (or the step that gives `target_fps`), always the
    first frame of a shot, and measure each. Outputs: candidate frames and the growing frame index
    (unreadable frames are in it with their reason)."""
    params = parse(SamplingParams, sampling, "preprocessing.sampling")
    hash_size = parse(DedupParams, dedup, "preprocessing.dedup").hash_size
    step = params.every_n_frames or 1
    if params.target_fps:
        step = max(1, round(film.fps / params.target_fps))
    readable = frame_log[frame_log.readable]
    position = readable.groupby("shot").cumcount()
    chosen = set(readable.frame[(position % step) == 0])
    frames = {}
    for f in film.frames():
        if f.index in chosen and f.image is not None:
            frames[frame_id(f.index)] = f.image
    measures, skipped = map_images(frames, lambda im: measure(im, hash_size), "measure frames")
    index = frame_log[frame_log.frame.isin(chosen) | ~frame_log.readable].copy()
    index.insert(0, "frame_id", index.frame.map(frame_id))
    index = index.join(pd.DataFrame.from_dict(measures, orient="index"), on="frame_id")
    index["kept"] = index.readable & index.frame_id.isin(measures)
    index["reason"] = np.where(index.readable, "", "unreadable: " + index.problem)
    for s in skipped:
        index.loc[index.frame_id == s["id"], "reason"] = "unmeasurable: " + s["reason"]
    log.info(
        "Sampled %d of %d frames (step %d, %d shots)",
        len(frames),
        len(frame_log),
        step,
        frame_log.shot.nunique(),
    )
    return {k: v for k, v in frames.items() if k in measures}, index.reset_index(drop=True)


def _hamming(a: str, b: str) -> int:
    return imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)


def deduplicate(
    frames: dict[str, np.ndarray],
    index: pd.DataFrame,
    dedup: dict[str, Any],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Group near-duplicates (perceptual-hash Hamming distance <= max_hamming to a group's first
    frame, anywhere in the film) and keep the sharpest frame of each group."""
    max_hamming = parse(DedupParams, dedup, "preprocessing.dedup").max_hamming
    index = index.copy()
    groups: list[list[int]] = []  # row positions; groups[g][0] is the leader
    for row in index.index[index.kept]:
        h = index.at[row, "phash"]
        for g in groups:
            if _hamming(index.at[g[0], "phash"], h) <= max_hamming:
                g.append(row)
                break
        else:
            groups.append([row])
    for g in groups:
        best = max(g, key=lambda r: index.at[r, "sharpness"])
        for r in g:
            if r != best:
                index.at[r, "kept"] = False
                index.at[r, "reason"] = (
                    f"near-duplicate of {index.at[best, 'frame_id']} "
                    f"(hamming {_hamming(index.at[best, 'phash'], index.at[r, 'phash'])})"
                )
    kept = set(index.frame_id[index.kept])
    log.info("Deduplication kept %d of %d frames", len(kept), len(frames))
    return {k: v for k, v in frames.items() if k in kept}, index


def filter_quality(
    frames: dict[str, np.ndarray],
    index: pd.DataFrame,
    quality: dict[str, Any],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Drop frames that are too small, badly exposed, or blurred: sharpness below the absolute floor
    or below `blur_ratio` x the median sharpness of the kept frames of the same shot.
    Outputs: `frames` and `frame_index`."""
    q = parse(QualityParams, quality, "preprocessing.quality")
    index = index.copy()
    shot_median = index[index.kept].groupby("shot").sharpness.median()
    for row in index.index[index.kept]:
        r = index.loc[row]
        limit = max(q.min_sharpness, q.blur_ratio * shot_median[r.shot])
        reason = ""
        if r.width < q.min_width or r.height < q.min_height:
            reason = f"too small ({r.width}x{r.height} < {q.min_width}x{q.min_height})"
        elif r.brightness < q.dark_mean:
            reason = f"under-exposed (mean {r.brightness:.0f} < {q.dark_mean:g})"
        elif r.brightness > q.bright_mean:
            reason = f"over-exposed (mean {r.brightness:.0f} > {q.bright_mean:g})"
        elif r.clipped > q.max_clipped_fraction:
            reason = f"clipped ({r.clipped:.0%} of pixels black or white)"
        elif r.sharpness < limit:
            reason = f"blurred (sharpness {r.sharpness:.1f} < {limit:.1f})"
        if reason:
            index.at[row, "kept"], index.at[row, "reason"] = False, reason
    index.loc[index.kept, "reason"] = "kept"
    kept = set(index.frame_id[index.kept])
    if frames and not kept:
        reasons = index.reason[index.readable].str.split(" [(]", regex=True).str[0].value_counts()
        raise ValueError(
            f"The quality filter (preprocessing.quality) dropped all {len(frames)} frames: "
            + ", ".join(f"{n} {why}" for why, n in reasons.items())
            + "; see frame_index for each frame's reason, or relax preprocessing.quality"
        )
    log.info("Quality filter kept %d of %d frames", len(kept), len(frames))
    return {k: v for k, v in frames.items() if k in kept}, index


def frames_contact_sheet(
    frames: dict[str, Any], frame_index: pd.DataFrame, max_frames: int = 48
) -> Image.Image:
    """A picture of what was kept: up to max_frames kept frames spread over the film, with shot ids."""
    kept = frame_index[frame_index.kept]
    pick = (
        kept.iloc[np.linspace(0, len(kept) - 1, min(max_frames, len(kept))).astype(int)]
        if len(kept)
        else kept
    )
    images = [materialise(frames[i]) for i in pick.frame_id]
    captions = [f"{i} shot {s}" for i, s in zip(pick.frame_id, pick.shot)]
    return Image.fromarray(
        contact_sheet(images, captions, thumb=192, cols=6, title=f"{len(kept)} kept frames")
    )


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

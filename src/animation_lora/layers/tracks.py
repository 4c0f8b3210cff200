"""Instances linked across the frames of a shot into tracks, and the detections that are scenery.

A track is the same instance from frame to frame (Hungarian matching on mask IoU, or on centroid distance
when the masks barely overlap). A detection that never matches a track in a shot of several frames and
whose pixels never change is scenery the segmenter mistook for a character (a rock, a root, a pebble):
it is dropped. A character that stands still is kept, because the segmenter finds it in the neighbouring
frames too and the detections link into a track."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..metrics import iou


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)


def link_tracks(
    masks: list[list[np.ndarray]], min_iou: float = 0.2, max_shift: float = 0.1
) -> list[list[int]]:
    """Track number of every instance of every frame (frames in shot order). Consecutive frames are matched
    by IoU (at least `min_iou`), or, failing that, by centroid shift below `max_shift` x the frame diagonal;
    an unmatched instance starts a new track."""
    tracks: list[list[int]] = []
    previous: list[tuple[int, np.ndarray]] = []
    n_tracks = 0
    for frame in masks:
        ids = [-1] * len(frame)
        if previous and frame:
            diag = float(np.hypot(*frame[0].shape))
            score = np.zeros((len(frame), len(previous)))
            for i, m in enumerate(frame):
                for j, (_, p) in enumerate(previous):
                    overlap = iou(m, p)
                    shift = np.linalg.norm(_centroid(m) - _centroid(p)) / diag
                    near = (1 - shift / max_shift) * (shift < max_shift)
                    score[i, j] = 1 + overlap if overlap >= min_iou else near
            rows, cols = linear_sum_assignment(-score)
            for i, j in zip(rows, cols):
                if score[i, j] > 0:
                    ids[i] = previous[j][0]
        for i in range(len(ids)):
            if ids[i] < 0:
                ids[i], n_tracks = n_tracks, n_tracks + 1
        tracks.append(ids)
        previous = list(zip(ids, frame)) or previous  # a frame without detections keeps the last ones
    return tracks


def static_strays(images: list[np.ndarray], masks: list[list[np.ndarray]], tracks: list[list[int]],
                  still: float = 4.0, min_frames: int = 3) -> set[tuple[int, int]]:
    """(frame position, instance) of the detections that are scenery: in a shot of at least `min_frames`
    frames, alone on their track (never matched in another frame) and still — the mean absolute change of
    their pixels to the neighbouring frames is below `still` grey levels."""
    if len(images) < min_frames:
        return set()
    lengths: dict[int, int] = {}
    for ids in tracks:
        for t in ids:
            lengths[t] = lengths.get(t, 0) + 1
    grey = [im.astype(np.float32).mean(-1) for im in images]
    out = set()
    for f, (frame_masks, ids) in enumerate(zip(masks, tracks)):
        neighbours = [grey[g] for g in (f - 1, f + 1) if 0 <= g < len(grey)]
        for k, (m, t) in enumerate(zip(frame_masks, ids)):
            if lengths[t] > 1 or not m.any():
                continue
            change = max(float(np.abs(grey[f][m] - n[m]).mean()) for n in neighbours)
            if change < still:
                out.add((f, k))
    return out


def fill_small_holes(mask: np.ndarray, max_share: float) -> np.ndarray:
    """The mask with its holes smaller than `max_share` of its area filled: a patch of a shirt coloured like
    the wall is the character's, the gap between two legs that touch at the feet is not."""
    holes, n = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if not n:
        return mask
    sizes = np.bincount(holes.ravel())
    small = sizes < max_share * mask.sum()
    small[0] = False
    return mask | small[holes]


def trim_scenery(
    images: list[np.ndarray],
    masks: list[list[np.ndarray]],
    tracks: list[list[int]],
    still: float = 4.0,
    min_shift: float = 0.03,
    min_frames: int = 3,
) -> list[list[np.ndarray]]:
    """Masks without the static scenery stuck to them (a rock beside a character). Only on a static camera
    (most pixels outside the masks never change) and only for a track that moves out of its own footprint
    (its centroid travels at least half its mean height, and at least `min_shift` x the frame diagonal; a
    close-up swaying in place does not, and the shot's median there is the character). In each frame, its
    pixels that look as the shot's background does there (the per-pixel median of the shot, which a moving
    character leaves) are scenery, unless they are small holes enclosed by pixels that do not (a patch of
    shirt coloured like the wall behind it). Comparing each frame with the background, not the pixels'
    range through the shot, also frees the scenery the character's feet pass over. A character that stands
    still keeps its whole mask."""
    if len(images) < min_frames or not any(masks):
        return masks
    stack = np.stack([im.astype(np.float32) for im in images])
    grey = stack.mean(-1)
    static = (grey.max(0) - grey.min(0)) < still
    union = np.zeros(static.shape, bool)
    for frame in masks:
        for m in frame:
            union |= m
    if (~union).sum() == 0 or static[~union].mean() < 0.8:
        return masks  # the camera moves or the light changes: no pixel is known to be scenery
    background = np.median(stack, axis=0)
    # the median is the background only where the characters cover a pixel in at most half the frames (a
    # short shot's character overlaps itself from frame to frame: its own pixels would become "background")
    covered = np.mean([np.any(f, axis=0) if f else np.zeros(static.shape, bool) for f in masks], axis=0)
    known = covered <= 0.5
    diag = float(np.hypot(*static.shape))
    paths: dict[int, list[np.ndarray]] = {}
    heights: dict[int, list[int]] = {}  # not widths: a prop stuck to the side widens the mask
    for frame, ids in zip(masks, tracks):
        for m, t in zip(frame, ids):
            paths.setdefault(t, []).append(_centroid(m))
            heights.setdefault(t, []).append(int(np.ptp(np.nonzero(m.any(1))[0])) + 1 if m.any() else 0)
    travel = {t: float(np.ptp(np.stack(p), axis=0).max()) for t, p in paths.items()}
    moving = {t for t in paths if travel[t] >= max(min_shift * diag, 0.5 * np.mean(heights[t]))}
    out = []
    for image, frame, ids in zip(stack, masks, tracks):
        looks_like_background = (np.abs(image - background).max(-1) < still) & known
        character_like = ~(looks_like_background | static)  # static: never changes through the shot
        trimmed = []
        for m, t in zip(frame, ids):
            if t in moving:
                core = fill_small_holes(ndimage.binary_closing(m & character_like, iterations=2), 0.02)
                m = m & core if (m & core).sum() >= 0.3 * m.sum() else m
            trimmed.append(m)
        out.append(trimmed)
    return out

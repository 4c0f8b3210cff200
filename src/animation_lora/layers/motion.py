"""Class-agnostic character proposals (issue 21): what moves against the shot's background. The camera's
own motion is estimated between consecutive frames (corners tracked with pyramidal Lucas-Kanade, a
homography fitted with RANSAC: the background's points agree, a moving character's are outliers) and
compensated; the shot's background is the per-pixel median of its frames in one reference view; a frame's
proposal is where it differs from that background seen from its own view. Nothing here knows what a person
is, so an animal, a robot or a car is found as well — but only while it moves: scenery that never moves
(rocks, trees, furniture) is never a proposal, and neither is a character that stands perfectly still for
most of the shot (the median then holds it)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from .masks import clean_mask, grabcut_refine, split_instances


@dataclass
class MotionParams:
    diff_threshold: float = 30.0  # colour difference from the background (0-255, the largest channel's)
    min_frames: int = 4  # shorter shots have no background to tell motion from
    max_background_frames: int = 25  # the median is taken over at most this many frames, evenly spaced
    refine: bool = True  # GrabCut at each proposal's edges


def camera_path(grey: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame's homography into the first frame's view (consecutive estimates chained). A pair with too
    few tracked corners, or no fit, counts as a still camera."""
    path = [np.eye(3)]
    for prev, cur in zip(grey, grey[1:]):
        step = np.eye(3)
        corners = cv2.goodFeaturesToTrack(prev, maxCorners=400, qualityLevel=0.01, minDistance=7)
        if corners is not None and len(corners) >= 8:
            moved, ok, _ = cv2.calcOpticalFlowPyrLK(prev, cur, corners, None)
            good = ok.ravel() == 1
            if good.sum() >= 8:
                fit, _ = cv2.findHomography(moved[good], corners[good], cv2.RANSAC, 2.0)
                if fit is not None:
                    step = fit  # cur -> prev
        path.append(path[-1] @ step)
    return path


def warp_seen(image: np.ndarray, homography: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` warped by `homography`; pixels it does not cover are NaN (OpenCV's border value cannot be)."""
    warped = cv2.warpPerspective(image, homography, size, flags=cv2.INTER_LINEAR)
    covered = cv2.warpPerspective(np.ones(image.shape[:2], np.uint8), homography, size,
                                  flags=cv2.INTER_NEAREST) > 0
    warped[~covered] = np.nan
    return warped


def shot_background(frames: list[np.ndarray], path: list[np.ndarray], limit: int) -> np.ndarray:
    """The per-pixel median of (up to `limit` of) the frames warped into the first frame's view; pixels no
    frame saw are NaN."""
    h, w = frames[0].shape[:2]
    picks = np.unique(np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int))
    stack = np.full((len(picks), h, w, 3), np.nan, np.float32)
    for k, i in enumerate(picks):
        stack[k] = warp_seen(frames[i].astype(np.float32), path[i], (w, h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: seen by no frame
        return np.nanmedian(stack, axis=0)


def moving_masks(frames: list[np.ndarray], params: MotionParams, min_area: int) -> list[np.ndarray]:
    """Per frame, the bool mask of what moves against the shot's (camera-compensated) background; all False
    for a shot shorter than `min_frames`."""
    h, w = frames[0].shape[:2]
    if len(frames) < params.min_frames:
        return [np.zeros((h, w), bool) for _ in frames]
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    path = camera_path(grey)
    background = shot_background(frames, path, params.max_background_frames)
    kernel = np.ones((3, 3), np.uint8)
    out = []
    for frame, to_first in zip(frames, path):
        back = np.linalg.inv(to_first)
        seen = warp_seen(np.nan_to_num(background), back, (w, h))
        seen[warp_seen(np.isnan(background[..., 0]).astype(np.float32), back, (w, h)) > 0] = np.nan
        diff = np.nan_to_num(np.abs(frame.astype(np.float32) - seen).max(axis=2), nan=0.0)
        mask = cv2.morphologyEx((diff > params.diff_threshold).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        mask = clean_mask(mask > 0, min_area)
        if params.refine and mask.any():
            mask = clean_mask(grabcut_refine(frame, mask), min_area)
        out.append(mask)
    return out


def add_moving(people: list[np.ndarray], moving: np.ndarray, min_area: int,
               person_share: float = 0.5) -> list[np.ndarray]:
    """The person model's masks plus what moves and no person covers: a moving component mostly inside a
    person (`person_share` of it) is that person (joining it to the person instead bleeds a neighbouring
    animal into the person: measured, docs/metrics.md); another one is a character of its own, less the
    person pixels. The person model wins on its pixels."""
    h, w = moving.shape
    covered = np.zeros((h, w), bool)
    for m in people:
        covered |= m
    grown = cv2.dilate(covered.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    extra = []
    for component in split_instances(moving, [], min_area):
        if (component & covered).sum() >= person_share * component.sum():
            continue
        extra += split_instances(component & ~grown, [], min_area)
    return people + extra

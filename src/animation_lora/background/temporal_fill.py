"""Temporal fill: within a shot, a background pixel a character hides in one frame is often visible in
another. Align the shot's frames to each other (camera pans: translation by phase correlation) and fill each
hole pixel with the median of the neighbours that see it; what no neighbour sees is left for inpainting."""

from __future__ import annotations

import cv2
import numpy as np

from ..params import block


@block
class TemporalFillParams:
    enabled: bool = True
    max_neighbours: int = 12  # frames of the same shot looked at per frame
    min_views: int = 1  # neighbours that must see a pixel to fill it
    edge_margin: int = 4  # px of a neighbour next to its own hole that are not trusted
    min_visible_share: float = 0.5  # of the neighbours covering a pixel, the share that must see it
    max_step: float = 0.05  # camera moves between sampled frames longer than this x width are outliers


def camera_path(images: list[np.ndarray], holes: list[np.ndarray], max_step: float) -> np.ndarray:
    """Camera position (x, y) of each frame of a shot relative to the first: phase correlation between
    consecutive frames, summed. Holes are first filled smoothly (Telea) so the moving characters' outlines
    do not pull the correlation; consecutive frames keep shifts small, which avoids the ambiguity of periodic
    textures (wallpaper); a step longer than `max_step` x the width (a character's jump taken for a pan)
    is replaced by the median step."""

    def smooth_grey(image, hole):
        filled = (
            cv2.inpaint(image, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA) if hole.any() else image
        )
        return cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY).astype(np.float32)

    greys = [smooth_grey(i, h) for i, h in zip(images, holes)]
    window = cv2.createHanningWindow(greys[0].shape[::-1], cv2.CV_32F)
    steps = np.array([cv2.phaseCorrelate(a, b, window)[0] for a, b in zip(greys, greys[1:])]).reshape(-1, 2)
    wild = np.linalg.norm(steps, axis=1) > max_step * greys[0].shape[1]
    if wild.any():
        steps[wild] = np.median(steps[~wild], axis=0) if (~wild).any() else 0.0
    # phaseCorrelate gives how far the content moved: the camera moved the other way
    return -np.cumsum(np.vstack([np.zeros((1, 2)), steps]), axis=0)


def _neighbour_views(images, holes, path, i, order, edge_margin):
    """Neighbours `order` of frame i moved onto it: their pixels, where they see the background, and where
    they cover frame i at all."""
    h, w = holes[i].shape
    edge_kernel = np.ones((2 * edge_margin + 1,) * 2, np.uint8)
    stack, seen, inside = [], [], []
    for j in order:
        dx, dy = path[j] - path[i]  # frame j looks (dx, dy) further right/down: move it back
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        stack.append(cv2.warpAffine(images[j], m, (w, h), flags=cv2.INTER_NEAREST))
        # a neighbour's pixels right next to its own hole may still carry character edges
        trusted = cv2.erode((~holes[j]).astype(np.uint8), edge_kernel)
        seen.append(cv2.warpAffine(trusted, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0)
        inside.append(cv2.warpAffine(np.ones((h, w), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0)
    return np.stack(stack).astype(np.float32), np.stack(seen), np.stack(inside)


def fill_frame(
    images: list[np.ndarray], holes: list[np.ndarray], path: np.ndarray, i: int, params: TemporalFillParams
) -> tuple[np.ndarray, np.ndarray]:
    """Frame i of a shot with the hole pixels its neighbours see filled; returns (image, hole left)."""
    out, hole = images[i].copy(), holes[i].copy()
    if not (params.enabled and hole.any() and len(images) > 1):
        return out, hole
    order = sorted((j for j in range(len(images)) if j != i), key=lambda j: abs(j - i))[
        : params.max_neighbours
    ]
    stack, seen, inside = _neighbour_views(images, holes, path, i, order, params.edge_margin)
    count = seen.sum(0)
    # seen by only a few of the frames that cover it: more likely those frames' segmentation missed a
    # character that stands there than a background the character walked past
    share = count / np.maximum(inside.sum(0), 1)
    fillable = hole & (count >= params.min_views) & (share >= params.min_visible_share)
    if fillable.any():
        median = np.nanmedian(np.where(seen[..., None], stack, np.nan)[:, fillable], axis=0)
        out[fillable] = np.clip(median + 0.5, 0, 255).astype(np.uint8)
    return out, hole & ~fillable


def fill_shot(
    images: list[np.ndarray],
    holes: list[np.ndarray],
    params: TemporalFillParams,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every frame of one shot (in time order) filled from the others: [(image, hole left)]."""
    path = camera_path(images, holes, params.max_step)
    return [fill_frame(images, holes, path, i, params) for i in range(len(images))]

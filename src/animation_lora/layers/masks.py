"""Mask post-processing shared by every segmentation backend and the layer split: clean components, the
inpainting hole, GrabCut at the edges, crops a person runs out of, touching characters split between faces."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def clean_mask(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Fill holes and drop connected components smaller than min_area pixels."""
    filled = ndimage.binary_fill_holes(mask)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(filled.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def hole_mask(masks: list[np.ndarray], shape: tuple[int, int], margin: int) -> np.ndarray:
    """Union of the instance masks grown by `margin` pixels: what inpainting must fill."""
    union = np.zeros(shape, bool)
    for m in masks:
        union |= m
    if margin > 0 and union.any():
        union = (
            cv2.dilate(
                union.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
            )
            > 0
        )
    return union


def grabcut_refine(image: np.ndarray, mask: np.ndarray, band: int = 3, iterations: int = 3) -> np.ndarray:
    """Let GrabCut decide the pixels within `band` of the mask's edge; the rest stays as it was."""
    if not mask.any() or mask.all():
        return mask
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    gc = np.full(mask.shape, cv2.GC_PR_BGD, np.uint8)
    gc[cv2.dilate(mask.astype(np.uint8), kernel) == 0] = cv2.GC_BGD
    gc[mask] = cv2.GC_PR_FGD
    gc[cv2.erode(mask.astype(np.uint8), kernel) > 0] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: same input, same mask
    cv2.grabCut(np.ascontiguousarray(image[..., ::-1]), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def cut_sides(mask: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> set[str]:
    """The sides of a crop (`box` in a frame of `size` w, h) that the crop's mask touches, other than the
    frame's own edges: where the person goes on outside the crop."""
    x0, y0, x1, y1 = box
    edges = {"left": mask[:, 0].any() and x0 > 0, "right": mask[:, -1].any() and x1 < size[0],
             "top": mask[0].any() and y0 > 0, "bottom": mask[-1].any() and y1 < size[1]}
    return {side for side, touched in edges.items() if touched}


def split_instances(mask: np.ndarray, faces: list[tuple[float, float]], min_area: int) -> list[np.ndarray]:
    """Connected components; a component holding several faces is cut between them (nearest face centre)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    out = []
    for k in range(1, n):
        comp = labels == k
        inside = [
            (x, y) for x, y in faces if comp[int(min(y, mask.shape[0] - 1)), int(min(x, mask.shape[1] - 1))]
        ]
        if len(inside) < 2:
            out.append(comp)
            continue
        ys, xs = np.nonzero(comp)
        centres = np.array(inside)
        nearest = np.argmin(
            np.abs(xs[:, None] - centres[None, :, 0]), axis=1
        )  # upright characters: split by x
        for j in range(len(inside)):
            part = np.zeros_like(comp)
            part[ys[nearest == j], xs[nearest == j]] = True
            out.append(part)
    return [m for m in out if m.sum() >= min_area]



"""OpenPose-style skeleton images from COCO-17 keypoints: the conditioning image ControlNet-OpenPose takes
(black background, OpenPose's 18 points — COCO-17 plus the neck between the shoulders — its limb colours)."""

from __future__ import annotations

import cv2
import numpy as np

# OpenPose-18 order: nose, neck, r/l shoulder, elbow, wrist, r/l hip, knee, ankle, r/l eye, r/l ear;
# each as the COCO-17 index (neck: None, the shoulders' midpoint).
OPENPOSE_FROM_COCO = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12),
         (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
           (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
           (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


def coco_to_openpose(coco: np.ndarray) -> np.ndarray:
    """(17, 3) COCO keypoints -> (18, 3) OpenPose keypoints (the neck scored by its weaker shoulder)."""
    out = np.zeros((18, 3), np.float32)
    for i, j in enumerate(OPENPOSE_FROM_COCO):
        if j is None:
            out[i, :2] = (coco[5, :2] + coco[6, :2]) / 2
            out[i, 2] = min(coco[5, 2], coco[6, 2])
        else:
            out[i] = coco[j]
    return out


def draw_openpose(coco: np.ndarray, size: tuple[int, int], min_score: float = 0.3) -> np.ndarray:
    """An (h, w, 3) uint8 skeleton image of `size` = (w, h): keypoints with a score below `min_score` and
    the limbs touching them are left out; stick width follows the image size as OpenPose's renderer does."""
    w, h = size
    canvas = np.zeros((h, w, 3), np.uint8)
    points = coco_to_openpose(np.asarray(coco, np.float32))
    width = max(1, int(round(min(w, h) / 100)))
    for k, (a, b) in enumerate(LIMBS):
        if points[a, 2] < min_score or points[b, 2] < min_score:
            continue
        pa, pb = points[a, :2], points[b, :2]
        centre, length = (pa + pb) / 2, float(np.linalg.norm(pa - pb))
        angle = float(np.degrees(np.arctan2(pb[1] - pa[1], pb[0] - pa[0])))
        poly = cv2.ellipse2Poly((int(centre[0]), int(centre[1])), (int(length / 2), width * 2), int(angle),
                                0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, tuple(int(c * 0.6) for c in COLOURS[k]))
    for k, (x, y, s) in enumerate(points):
        if s >= min_score:
            cv2.circle(canvas, (int(x), int(y)), width * 2, COLOURS[k], thickness=-1)
    return canvas

"""Face crops: a square around a detected face (white outside the instance), the detected faces' boxes, and
a framing tag per instance from its face's share of its height."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ..backends.embedding import flatten_rgba


def face_crop(image: np.ndarray, box: tuple[float, ...], margin: float, size: int) -> np.ndarray:
    """The face's square crop: its longer side plus `margin` on each side, outside the image white,
    resized to `size` pixels."""
    rgb = flatten_rgba(image, 255)
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 1)
    canvas = np.full((n, n, 3), 255, np.uint8)
    h, w = rgb.shape[:2]
    sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + n, w), min(top + n, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = rgb[sy0:sy1, sx0:sx1, :3]
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.Resampling.LANCZOS))


def face_boxes(face_table: pd.DataFrame) -> pd.DataFrame:
    """The detected faces' boxes (fx0, fy0, fx1, fy1) by instance id."""
    return face_table[face_table.has_face.astype(bool)].set_index("instance_id")[["fx0", "fy0", "fx1", "fy1"]]


def framing(face_table: pd.DataFrame, instance_index: pd.DataFrame) -> dict[str, str]:
    """A framing tag per instance with a face, from the face's height over the instance's: `close-up`
    (>= 0.45), `upper body` (>= 0.2), `full body` — what varies between images, so the trigger binds to
    the identity rather than to one framing."""
    boxes = instance_index.set_index("instance_id")
    faces = face_table[face_table.has_face.astype(bool)].set_index("instance_id")
    tags = {}
    for iid, face in faces.iterrows():
        if iid in boxes.index:
            share = (face.fy1 - face.fy0) / max(float(boxes.at[iid, "y1"] - boxes.at[iid, "y0"]), 1.0)
            tags[iid] = "close-up" if share >= 0.45 else "upper body" if share >= 0.2 else "full body"
    return tags



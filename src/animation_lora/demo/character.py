"""Paint one character from its skeleton: shaded capsules and ellipses ("3D-ish" through a
distance-transform shading per part), a face whose eyes, brows and mouth show the expression."""

from __future__ import annotations

import cv2
import numpy as np

from .script import Character
from .skeleton import Skeleton

SUPERSAMPLE = 3  # parts are drawn at 3x and area-averaged down: soft, anti-aliased edges


class Canvas:
    """An RGB + coverage layer at supersampled resolution over the character's box."""

    def __init__(self, box: tuple[int, int, int, int]):
        self.x0, self.y0, x1, y1 = box
        self.h, self.w = (y1 - self.y0) * SUPERSAMPLE, (x1 - self.x0) * SUPERSAMPLE
        self.rgb = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.uint8)

    def pt(self, p) -> tuple[int, int]:
        return (int(round((p[0] - self.x0) * SUPERSAMPLE)), int(round((p[1] - self.y0) * SUPERSAMPLE)))

    def px(self, length: float) -> int:
        return max(1, int(round(length * SUPERSAMPLE)))

    def blank(self) -> np.ndarray:
        return np.zeros((self.h, self.w), np.uint8)

    def paint(self, mask: np.ndarray, color, shaded: bool = True, texture: np.ndarray | None = None):
        """Lay a part over what is already painted; shaded parts get darker towards their rims."""
        on = mask > 0
        if not on.any():
            return
        colour = (
            np.broadcast_to(np.asarray(color, np.float32), self.rgb.shape) if texture is None else texture
        )
        if shaded:
            dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
            radius = max(float(dist.max()), 1.0)
            shade = 0.68 + 0.37 * np.clip(dist / radius, 0, 1) ** 0.6
            self.rgb[on] = colour[on] * shade[on, None]
        else:
            self.rgb[on] = colour[on]
        self.alpha[on] = 255

    def downsample(self) -> tuple[np.ndarray, np.ndarray]:
        size = (self.w // SUPERSAMPLE, self.h // SUPERSAMPLE)
        alpha = cv2.resize(self.alpha.astype(np.float32) / 255, size, interpolation=cv2.INTER_AREA)
        premult = cv2.resize(self.rgb * (self.alpha[..., None] / 255), size, interpolation=cv2.INTER_AREA)
        rgb = premult / np.maximum(alpha[..., None], 1e-6)
        return np.clip(rgb, 0, 255), np.clip(alpha, 0, 1)


def character_box(sk: Skeleton, frame_w: int, frame_h: int) -> tuple[int, int, int, int]:
    pts = np.stack(list(sk.points.values()))
    m = sk.head_radius * 1.6
    x0, y0 = np.floor(pts.min(0) - m).astype(int)
    x1, y1 = np.ceil(pts.max(0) + m).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, frame_w), min(y1, frame_h)


def _capsule(c: Canvas, a, b, thickness: float) -> np.ndarray:
    m = c.blank()
    cv2.line(m, c.pt(a), c.pt(b), 255, c.px(thickness), cv2.LINE_8)
    return m


def _ellipse(c: Canvas, centre, axes, angle=0.0, start=0, end=360, thickness=-1) -> np.ndarray:
    m = c.blank()
    cv2.ellipse(m, c.pt(centre), (c.px(axes[0]), c.px(axes[1])), angle, start, end, 255, thickness)
    return m


def _stripes(c: Canvas, base, stripe, period: float) -> np.ndarray:
    rows = (np.arange(c.h) // c.px(period / 2)) % 2 == 1
    tex = np.empty((c.h, c.w, 3), np.float32)
    tex[:] = base
    tex[rows] = stripe
    return tex


def paint_character(
    ch: Character, sk: Skeleton, expression: str, direction: int, frame_w: int, frame_h: int
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
    """Return (box, rgb float32, alpha in [0, 1]) of the character, cropped to its box."""
    box = character_box(sk, frame_w, frame_h)
    c = Canvas(box)
    p, r = sk.points, sk.head_radius
    limb = r * 0.42
    # legs, shoes
    for side in ("left", "right"):
        c.paint(_capsule(c, p[f"{side}_hip"], p[f"{side}_knee"], limb * 1.15), ch.trousers)
        lower = ch.trousers if ch.hair_style == "bob" else ch.skin  # marco wears shorts
        c.paint(_capsule(c, p[f"{side}_knee"], p[f"{side}_ankle"], limb), lower)
        foot = p[f"{side}_ankle"] + np.array([direction * r * 0.25, r * 0.12])
        c.paint(_ellipse(c, foot, (r * 0.38, r * 0.2)), ch.shoes)
    # torso: a rounded trapezoid from the shoulders to the hips
    torso = c.blank()
    shoulder_pts = [p["right_shoulder"], p["left_shoulder"]]
    hip_pts = [p["left_hip"] + np.array([r * 0.2, r * 0.15]), p["right_hip"] + np.array([-r * 0.2, r * 0.15])]
    poly = np.array([c.pt(q) for q in shoulder_pts + hip_pts], np.int32)
    cv2.fillPoly(torso, [poly], 255)
    torso = cv2.dilate(torso, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (c.px(limb), c.px(limb))))
    texture = _stripes(c, ch.shirt, ch.stripes, r * 0.3) if ch.stripes else None
    c.paint(torso, ch.shirt, texture=texture)
    c.paint(_capsule(c, p["neck"], p["head"] * 0.5 + p["neck"] * 0.5, limb * 1.1), ch.skin)
    # arms: sleeve, forearm, hand
    for side in ("left", "right"):
        c.paint(
            _capsule(c, p[f"{side}_shoulder"], p[f"{side}_elbow"], limb * 1.05),
            ch.shirt,
            texture=_stripes(c, ch.shirt, ch.stripes, r * 0.3) if ch.stripes else None,
        )
        c.paint(_capsule(c, p[f"{side}_elbow"], p[f"{side}_wrist"], limb * 0.85), ch.skin)
        c.paint(_ellipse(c, p[f"{side}_wrist"], (r * 0.2, r * 0.2)), ch.skin)
    _paint_head(c, ch, p["head"], r, expression)
    rgb, alpha = c.downsample()
    return box, rgb, alpha


def _paint_head(c: Canvas, ch: Character, h: np.ndarray, r: float, expression: str):
    if ch.hair_style == "bob":  # hair that falls behind the head down to the jaw
        c.paint(_ellipse(c, h + [0, r * 0.1], (r * 1.18, r * 1.08)), ch.hair)
    for s in (-1, 1):
        c.paint(_ellipse(c, h + [s * r * 0.9, r * 0.05], (r * 0.2, r * 0.26)), ch.skin)
    c.paint(_ellipse(c, h, (r * 0.92, r)), ch.skin)
    # hair cap on top of the head, with a fringe
    cap = _ellipse(c, h + [0, -r * 0.22], (r * 0.98, r * 0.82), start=180, end=360)
    fringe = _ellipse(c, h + [r * 0.2, -r * 0.45], (r * 0.65, r * 0.28), angle=-12)
    c.paint(np.maximum(cap, fringe), ch.hair)
    _paint_face(c, h, r, expression)


def _paint_face(c: Canvas, h: np.ndarray, r: float, expression: str):
    """Eyes, brows, nose and mouth; geometry per expression, drawn flat (no shading) like ink."""
    ink, white, mouth_dark = (35, 25, 25), (250, 250, 250), (120, 30, 40)
    eye_y = -0.05 * r
    eye_w, eye_h, pupil = {"surprised": (0.2, 0.27, 0.08), "happy": (0.17, 0.15, 0.09)}.get(
        expression, (0.16, 0.19, 0.09)
    )
    brow_lift = {"surprised": 0.5, "happy": 0.36, "sad": 0.34, "neutral": 0.3}.get(expression, 0.3)
    for s in (-1, 1):
        e = h + [s * 0.38 * r, eye_y]
        c.paint(_ellipse(c, e, (eye_w * r, eye_h * r)), white, shaded=False)
        c.paint(_ellipse(c, e + [0, 0.02 * r], (pupil * r, pupil * r)), ink, shaded=False)
        inner, outer = e + [-s * 0.12 * r, -brow_lift * r], e + [s * 0.14 * r, -brow_lift * r]
        if expression == "sad":  # inner ends raised
            inner, outer = inner + [0, -0.1 * r], outer + [0, 0.06 * r]
        if expression == "surprised":
            inner, outer = inner + [0, 0.03 * r], outer + [0, 0.03 * r]
        c.paint(_capsule(c, inner, outer, 0.07 * r), ink, shaded=False)
    c.paint(_ellipse(c, h + [0, 0.2 * r], (0.08 * r, 0.06 * r)), (200, 120, 100), shaded=False)
    m = h + [0, 0.52 * r]
    if expression == "happy":  # open smile
        c.paint(
            _ellipse(c, m + [0, -0.06 * r], (0.3 * r, 0.2 * r), start=0, end=180), mouth_dark, shaded=False
        )
    elif expression == "surprised":  # round open mouth
        c.paint(_ellipse(c, m, (0.12 * r, 0.16 * r)), mouth_dark, shaded=False)
    elif expression == "sad":  # frown
        c.paint(
            _ellipse(c, m + [0, 0.1 * r], (0.22 * r, 0.1 * r), start=180, end=360, thickness=c.px(0.06 * r)),
            ink,
            shaded=False,
        )
    else:  # neutral: a short straight mouth
        c.paint(_capsule(c, m + [-0.16 * r, 0], m + [0.16 * r, 0], 0.06 * r), ink, shaded=False)

"""Location plates wider than the frame (the camera pans across them), with gradients for depth."""

from __future__ import annotations

import cv2
import numpy as np

PLATE_WIDTH = 1.7  # in frame widths: room for the camera start range plus its drift


def _vgradient(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(
        (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32), (h, w, 3)
    ).copy()


def _hshade(img: np.ndarray, x0: int, x1: int, y0: int, y1: int, strength: float = 0.18):
    """Darken a block from left to right, as if lit from the left."""
    ramp = np.linspace(1 + strength / 2, 1 - strength / 2, max(x1 - x0, 1), dtype=np.float32)
    img[y0:y1, x0:x1] *= ramp[None, :, None]


def seaside_town(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgradient(h, w, (105, 165, 230), (205, 228, 245))
    street = int(0.78 * h)
    palette = [
        (226, 160, 80),
        (232, 130, 110),
        (240, 208, 120),
        (120, 180, 170),
        (215, 110, 70),
        (245, 225, 190),
    ]
    x = 0
    while x < w:
        fw = int(rng.uniform(0.22, 0.34) * h)
        top = int(rng.uniform(0.12, 0.35) * h)
        colour = palette[rng.integers(len(palette))]
        img[top:street, x : x + fw] = colour
        _hshade(img, x, min(x + fw, w), top, street)
        img[top : top + max(3, h // 60), x : x + fw] = (170, 80, 50)  # roof ledge
        rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        wh, ww = int(0.09 * h), max(4, int(fw / (2 * cols + 1)))
        for i in range(rows):
            wy = top + int((i + 0.6) * (street - top - 0.2 * h) / rows)
            for j in range(cols):
                wx = x + int((2 * j + 1) * fw / (2 * cols + 1))
                cv2.rectangle(img, (wx - 2, wy - 2), (wx + ww + 1, wy + wh + 1), (250, 245, 235), -1)
                cv2.rectangle(img, (wx, wy), (wx + ww - 1, wy + wh - 1), (50, 70, 95), -1)
                cv2.rectangle(
                    img, (wx - ww // 2 - 2, wy), (wx - 3, wy + wh - 1), (60, 130, 80), -1
                )  # shutter
        door_x = x + fw // 2 - int(0.05 * h)
        cv2.rectangle(
            img, (door_x, street - int(0.16 * h)), (door_x + int(0.1 * h), street), (95, 60, 40), -1
        )
        x += fw
    img[street:] = _vgradient(h - street, w, (170, 160, 150), (120, 112, 105))
    for y in range(street + 4, h, max(4, h // 30)):  # cobble rows
        img[y : y + 1] *= 0.85
    return img


def beach(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgradient(h, w, (120, 185, 240), (215, 235, 250))
    sea, sand = int(0.46 * h), int(0.62 * h)
    img[sea:sand] = _vgradient(sand - sea, w, (30, 90, 160), (60, 175, 190))
    xs = np.arange(w)
    for k in range(6):  # foam streaks
        y = sea + (k + 0.5) * (sand - sea) / 6 + 2 * np.sin(xs / (18 + 5 * k) + rng.uniform(0, 6))
        img[np.clip(y.astype(int), 0, h - 1), xs] = (235, 245, 250)
    img[sand:] = _vgradient(h - sand, w, (238, 218, 168), (212, 186, 136))
    n = w * (h - sand) // 60
    ys, xs2 = rng.integers(sand, h, n), rng.integers(0, w, n)
    img[ys, xs2] *= 0.88  # grains
    ux = int(rng.uniform(0.2, 0.8) * w)  # a red-and-white umbrella
    cv2.line(img, (ux, int(0.5 * h)), (ux, int(0.75 * h)), (90, 70, 60), max(2, h // 120))
    for k in range(6):
        colour = (215, 50, 50) if k % 2 else (245, 245, 245)
        cv2.ellipse(
            img, (ux, int(0.5 * h)), (int(0.16 * h), int(0.07 * h)), 0, 180 + 30 * k, 210 + 30 * k, colour, -1
        )
    return img


def room(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = _vgradient(h, w, (236, 214, 180), (214, 188, 150))
    img[:, (np.arange(w) // max(6, h // 24)) % 2 == 0] *= 0.96  # wallpaper stripes
    floor = int(0.7 * h)
    img[floor:] = _vgradient(h - floor, w, (150, 100, 60), (110, 70, 40))
    for y in range(floor, h, max(5, h // 18)):
        img[y : y + 1] *= 0.8
    img[floor - max(3, h // 40) : floor] = (245, 240, 230)  # skirting board
    for k in range(3):  # windows with sky, a picture, a shelf, spread along the wall
        x = int((k + rng.uniform(0.1, 0.4)) * w / 3)
        if k != 1:
            cv2.rectangle(
                img,
                (x - 4, int(0.12 * h) - 4),
                (x + int(0.22 * h) + 4, int(0.45 * h) + 4),
                (250, 250, 245),
                -1,
            )
            img[int(0.12 * h) : int(0.45 * h), x : x + int(0.22 * h)] = _vgradient(
                int(0.45 * h) - int(0.12 * h), int(0.22 * h), (110, 170, 230), (200, 225, 240)
            )
        else:
            cv2.rectangle(img, (x, int(0.18 * h)), (x + int(0.2 * h), int(0.34 * h)), (120, 80, 40), -1)
            cv2.rectangle(
                img, (x + 5, int(0.18 * h) + 5), (x + int(0.2 * h) - 5, int(0.34 * h) - 5), (70, 130, 90), -1
            )
            cv2.rectangle(img, (x - int(0.1 * h), int(0.5 * h)), (x + int(0.3 * h), floor), (140, 90, 50), -1)
            _hshade(img, x - int(0.1 * h), x + int(0.3 * h), int(0.5 * h), floor, 0.3)
    return img


PAINTERS = {"seaside_town": seaside_town, "beach": beach, "room": room}


def paint_location(name: str, frame_w: int, frame_h: int, seed: int) -> np.ndarray:
    """The whole plate of a location (H x PLATE_WIDTH*W), uint8 RGB; the same for every shot there."""
    rng = np.random.default_rng([seed, list(PAINTERS).index(name)])
    img = PAINTERS[name](frame_h, int(PLATE_WIDTH * frame_w), rng)
    return np.clip(img, 0, 255).astype(np.uint8)

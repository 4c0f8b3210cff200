"""A character that is not a person (issue 21): a four-legged animal seen from the side — body, belly, head
with a snout, an ear and an eye, a tail, four legs swinging in diagonal pairs — painted like the people
(`character.Canvas`: shaded parts, supersampled edges). No person model knows its silhouette, no pose model
its joints, no face detector its face: the class-agnostic path has to find it."""

from __future__ import annotations

import math

import numpy as np

from .character import Canvas, _capsule, _ellipse
from .script import Creature
from .skeleton import CYCLE_SECONDS

# leg swing (degrees, either side of straight down) and body bob per action; a creature jumps as it walks
STRIDE = {"standing": (3.0, 0.0), "walking": (24.0, 0.02), "running": (40.0, 0.06), "jumping": (24.0, 0.02)}


def paint_creature(cr: Creature, x: float, ground_y: float, height_px: float, t: float, phase: float,
                   action: str, direction: int, frame_w: int, frame_h: int,
                   ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray]:
    """(box, rgb float32, alpha in [0, 1]) of the creature whose body centre is at `x`, feet on `ground_y`,
    `height_px` tall at the shoulder; it faces image right for `direction` +1."""
    u = (t / CYCLE_SECONDS[action] + phase) % 1.0
    swing, bob = STRIDE[action]
    s = math.sin(2 * math.pi * u)
    leg = 0.55 * height_px
    body_len, body_h = cr.length * height_px, 0.5 * height_px
    centre = np.array([x, ground_y - leg - body_h * 0.35 - bob * height_px * abs(s)])
    d = direction
    head = centre + [d * body_len * 0.55, -body_h * 0.75]
    r = 0.32 * height_px
    pad = r * 1.5
    box = (max(int(x - body_len * 0.8 - pad), 0), max(int(head[1] - r * 2), 0),
           min(int(x + body_len * 0.8 + pad), frame_w), min(int(ground_y + 0.1 * height_px) + 1, frame_h))
    if box[2] <= box[0] or box[3] <= box[1]:
        return box, np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32)
    c = Canvas(box)
    width = 0.16 * height_px
    hips = {"front": centre + [d * body_len * 0.32, body_h * 0.2],
            "back": centre + [-d * body_len * 0.32, body_h * 0.2]}
    # legs: the far pair darker, behind the body; diagonal pairs swing together
    for far, shade in ((True, 0.75), (False, 1.0)):
        for end, sign in (("front", 1), ("back", -1)):
            angle = math.radians(swing * s * sign * (-1 if far else 1))
            foot = hips[end] + leg * np.array([d * math.sin(angle), math.cos(angle)]) + [0, body_h * 0.1]
            colour = tuple(v * shade for v in cr.body)
            c.paint(_capsule(c, hips[end], foot, width), colour)
            c.paint(_ellipse(c, foot + [d * width * 0.3, 0], (width * 0.7, width * 0.4)), cr.accent)
        if far:  # the tail, behind the body, wagging
            root = centre + [-d * body_len * 0.45, -body_h * 0.2]
            wag = math.radians(35 + 20 * math.sin(2 * math.pi * (2 * u)))
            tip = root + 0.7 * height_px * np.array([-d * math.cos(wag), -math.sin(wag)])
            c.paint(_capsule(c, root, tip, width * 0.8), cr.body)
            c.paint(_ellipse(c, tip, (width * 0.5, width * 0.5)), cr.accent)
            c.paint(_ellipse(c, centre, (body_len / 2, body_h / 2)), cr.body)
            c.paint(_ellipse(c, centre + [0, body_h * 0.22], (body_len * 0.38, body_h * 0.22)), cr.belly)
    # neck, head, ear, snout, eye, nose
    c.paint(_capsule(c, centre + [d * body_len * 0.35, -body_h * 0.1], head, width * 1.6), cr.body)
    c.paint(_ellipse(c, head + [-d * r * 0.35, -r * 0.85], (r * 0.3, r * 0.55), angle=-d * 20), cr.accent)
    c.paint(_ellipse(c, head, (r, r * 0.85)), cr.body)
    snout = head + [d * r * 0.85, r * 0.25]
    c.paint(_ellipse(c, snout, (r * 0.55, r * 0.38)), cr.belly)
    c.paint(_ellipse(c, snout + [d * r * 0.5, -r * 0.1], (r * 0.16, r * 0.13)), (30, 20, 20), shaded=False)
    eye = head + [d * r * 0.35, -r * 0.2]
    c.paint(_ellipse(c, eye, (r * 0.2, r * 0.22)), (250, 250, 250), shaded=False)
    c.paint(_ellipse(c, eye + [d * r * 0.05, 0], (r * 0.11, r * 0.11)), (30, 20, 20), shaded=False)
    rgb, alpha = c.downsample()
    return box, rgb, alpha

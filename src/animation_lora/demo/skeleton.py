"""A jointed 2-D skeleton animated per action. Angles are in the image plane; the torso and face
stay towards the camera (as in a lot of cartoon staging) so face detectors see them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Bone lengths in units of the character height (feet to top of hair ≈ 0.93 units).
HEAD_R, NECK, TORSO, SHOULDER, HIP = 0.12, 0.12, 0.28, 0.10, 0.065
UPPER_ARM, FOREARM, THIGH, SHIN = 0.15, 0.14, 0.19, 0.19
TOTAL = 0.93

COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
          "left_knee", "right_knee", "left_ankle", "right_ankle")

CYCLE_SECONDS = {"standing": 2.0, "walking": 1.0, "running": 0.6, "jumping": 1.0}
SPEED = {"standing": 0.0, "walking": 0.125, "running": 0.225, "jumping": 0.025}  # frame widths / s


@dataclass
class Pose:
    """Signed image-plane angles in degrees (0 = straight down, positive = towards image right)."""
    thigh: tuple[float, float]  # (image-left leg, image-right leg)
    knee: tuple[float, float]
    upper_arm: tuple[float, float]
    elbow: tuple[float, float]
    lean: float
    lift: float  # pelvis height above its rest position, in character units (jumps, bobbing)


def pose_for(action: str, t: float, phase: float, direction: int) -> Pose:
    """The pose of `action` at time t (seconds); direction +1 faces image right, -1 left."""
    u = (t / CYCLE_SECONDS[action] + phase) % 1.0
    s = math.sin(2 * math.pi * u)
    d = direction
    if action == "standing":
        sway = 3 * s
        return Pose(thigh=(-4, 4), knee=(0, 0), upper_arm=(-12 + sway, 12 + sway), elbow=(-d * 5, -d * 5),
                    lean=0, lift=0.004 * s)
    if action == "walking":
        return Pose(thigh=(d * 22 * s, -d * 22 * s),
                    knee=(-d * (8 + 22 * max(0.0, -s)), -d * (8 + 22 * max(0.0, s))),
                    upper_arm=(-6 - d * 20 * s, 6 + d * 20 * s), elbow=(d * 15, d * 15),
                    lean=d * 3, lift=0.012 * abs(math.sin(4 * math.pi * u)))
    if action == "running":
        return Pose(thigh=(d * 42 * s, -d * 42 * s),
                    knee=(-d * (20 + 70 * max(0.0, -s)), -d * (20 + 70 * max(0.0, s))),
                    upper_arm=(-8 - d * 38 * s, 8 + d * 38 * s), elbow=(d * 85, d * 85),
                    lean=d * 12, lift=0.035 * abs(math.sin(2 * math.pi * u)))
    if action == "jumping":
        if u < 0.3:  # crouch and push off
            c = math.sin(math.pi * u / 0.3)
            return Pose(thigh=(-8 + d * 35 * c, 8 + d * 35 * c), knee=(-d * 60 * c, -d * 60 * c),
                        upper_arm=(-15 - d * 30 * c, 15 - d * 30 * c), elbow=(d * 10, d * 10),
                        lean=d * 10 * c, lift=-0.07 * c)
        v = (u - 0.3) / 0.7  # airborne, arms up
        a = math.sin(math.pi * v)
        return Pose(thigh=(-12 + d * 20 * a, 12 + d * 20 * a), knee=(-d * 45 * a, -d * 45 * a),
                    upper_arm=(-(30 + 130 * a), 30 + 130 * a), elbow=(0, 0),
                    lean=0, lift=0.9 * v * (1 - v))
    raise ValueError(f"Unknown action '{action}'")


def _limb(start: np.ndarray, angle_deg: float, length: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return start + length * np.array([math.sin(a), math.cos(a)])


@dataclass(frozen=True)
class Proportions:
    """Bone lengths in character units; the defaults are the demo film's two characters (the pretraining
    world, `world.py`, draws others). `total` is the feet-to-hair height those lengths make."""
    head: float = HEAD_R
    neck: float = NECK
    torso: float = TORSO
    shoulder: float = SHOULDER
    hip: float = HIP
    upper_arm: float = UPPER_ARM
    forearm: float = FOREARM
    thigh: float = THIGH
    shin: float = SHIN
    total: float = TOTAL


DEMO_PROPORTIONS = Proportions()


@dataclass
class Skeleton:
    """Joint positions in pixels (x, y) plus the head circle."""
    points: dict[str, np.ndarray]
    head_radius: float

    def coco17(self) -> np.ndarray:
        return np.stack([self.points[name] for name in COCO17])


def build_skeleton(pose: Pose, pelvis_x: float, ground_y: float, height_px: float,
                   body: Proportions = DEMO_PROPORTIONS) -> Skeleton:
    """Place the skeleton so that a standing character's feet touch ground_y."""
    unit = height_px / body.total
    pelvis = np.array([pelvis_x, ground_y - unit * (body.thigh + body.shin + 0.02 + pose.lift)])
    lean = math.radians(pose.lean)
    up = np.array([math.sin(lean), -math.cos(lean)])
    side = np.array([math.cos(lean), math.sin(lean)])  # image-right along the shoulders
    neck = pelvis + unit * body.torso * up
    head = neck + unit * body.neck * up
    p = {"pelvis": pelvis, "neck": neck, "head": head}
    for k, sign, name in ((0, -1, "right"), (1, 1, "left")):  # the character's left is image right
        shoulder = neck + unit * (body.shoulder * sign * side - 0.02 * up)
        elbow = _limb(shoulder, pose.upper_arm[k], unit * body.upper_arm)
        wrist = _limb(elbow, pose.upper_arm[k] + pose.elbow[k], unit * body.forearm)
        hip = pelvis + unit * body.hip * sign * side
        knee = _limb(hip, pose.thigh[k], unit * body.thigh)
        ankle = _limb(knee, pose.thigh[k] + pose.knee[k], unit * body.shin)
        p.update({f"{name}_shoulder": shoulder, f"{name}_elbow": elbow, f"{name}_wrist": wrist,
                  f"{name}_hip": hip, f"{name}_knee": knee, f"{name}_ankle": ankle})
    r = unit * body.head
    p["nose"] = head + np.array([0, 0.15 * r])
    p["left_eye"] = head + np.array([0.38 * r, -0.08 * r])
    p["right_eye"] = head + np.array([-0.38 * r, -0.08 * r])
    p["left_ear"] = head + np.array([0.92 * r, 0.05 * r])
    p["right_ear"] = head + np.array([-0.92 * r, 0.05 * r])
    return Skeleton(points=p, head_radius=r)

"""Actions from COCO-17 keypoints: features per instance over a short window of its track (the same
character through its shot), invariant to position and scale (lengths in torso lengths, angles in degrees,
speeds in torso lengths per second); HDBSCAN clusters of those features (each track one action), named
by interpretable rules on the cluster centroids.

The rules, in order: `jumping` — a fast vertical hip motion, or both feet off the ground for part of the
window without striding; `standing` — legs that do not stride, straight knees, no motion; `running` — legs
that stride with a long stride, deeply bent knees or a high cadence; `walking` — legs that stride.
A cluster no rule names stays `unlabeled`, as does one named by an
action that was not requested."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..clustering import NOISE, ClusteringParams, cluster_embeddings
from ..params import block

# COCO-17 indices
NOSE, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = 0, 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = 11, 12, 13, 14, 15, 16

KNOWN_ACTIONS = ("running", "jumping", "walking", "standing")
UNLABELED = "unlabeled"
FEATURES = ("knee_flex", "hip_flex", "elbow_flex", "stride", "stride_amplitude", "arms_up",
            "airborne", "hip_velocity", "cadence")


@block
class ActionRules:
    """Thresholds of the naming rules (torso lengths, degrees, per second)."""

    jump_velocity: float = 1.2  # torso lengths / s of vertical hip motion -> jumping
    airborne: float = 0.5  # share of the window with both feet off the ground, without striding -> jumping
    contact: float = 0.25  # a foot within this many torso lengths of the track's ground line touches it
    stride_amplitude: float = 0.7  # range of the ankle spread: above it the legs stride (walk, run)
    still_knee: float = 20.0  # legs that do not stride, knees bent less than this (degrees) and ...
    still_velocity: float = 0.6  # ... hips slower than this (torso lengths / s) -> standing
    run_stride: float = 1.3  # ankle spread above this -> running
    run_knee: float = 30.0  # mean knee bend (degrees) above this -> running
    run_cadence: float = 2.8  # steps per second above this -> running (needs a window of several frames)


def check_actions(actions: list[str]) -> list[str]:
    """The requested actions; a name the labeller does not know is an error listing the known ones."""
    unknown = [a for a in actions if a not in KNOWN_ACTIONS]
    if unknown:
        raise ValueError(f"Unknown action(s) {unknown} in `pose.actions`; the labeller knows "
                         f"{', '.join(KNOWN_ACTIONS)}")
    return list(actions)


def angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Bend at joint b in degrees: 0 for a straight limb a-b-c, 90 for a right angle (vectorised)."""
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)).clip(1e-6)
    return 180.0 - np.degrees(np.arccos(np.clip(cos, -1, 1)))


def torso_length(k: np.ndarray) -> np.ndarray:
    """Distance from the shoulders' midpoint to the hips' midpoint, (…, 17, ≥2) -> (…)."""
    shoulders, hips = (k[..., L_SHO, :2] + k[..., R_SHO, :2]) / 2, (k[..., L_HIP, :2] + k[..., R_HIP, :2]) / 2
    return np.linalg.norm(shoulders - hips, axis=-1).clip(1e-3)


def pose_features(k: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame features of (n, 17, ≥2) keypoints: bends (degrees), stride and arms-up (torso lengths)."""
    xy = k[..., :2].astype(np.float64)
    torso = torso_length(xy)
    mid_sho = (xy[:, L_SHO] + xy[:, R_SHO]) / 2
    knee = (angle(xy[:, L_HIP], xy[:, L_KNE], xy[:, L_ANK])
            + angle(xy[:, R_HIP], xy[:, R_KNE], xy[:, R_ANK])) / 2
    hip = (angle(mid_sho, xy[:, L_HIP], xy[:, L_KNE]) + angle(mid_sho, xy[:, R_HIP], xy[:, R_KNE])) / 2
    elbow = (angle(xy[:, L_SHO], xy[:, L_ELB], xy[:, L_WRI])
             + angle(xy[:, R_SHO], xy[:, R_ELB], xy[:, R_WRI])) / 2
    stride = np.linalg.norm(xy[:, L_ANK] - xy[:, R_ANK], axis=-1) / torso
    arms = (mid_sho[:, 1] - (xy[:, L_WRI, 1] + xy[:, R_WRI, 1]) / 2) / torso  # image y grows downwards
    return {"knee_flex": knee, "hip_flex": hip, "elbow_flex": elbow, "stride": stride, "arms_up": arms}


def track_features(k: np.ndarray, t: np.ndarray, window: float = 0.5, contact: float = 0.25,
                   cycle: float = 0.6) -> pd.DataFrame:
    """Features of each instance of one track: keypoints (n, 17, ≥2) at times t (seconds, any order).
    Motion features use the instances within ±`window` s: stride amplitude (range of the ankle spread's
    size: left and right may be swapped), cadence (steps per second: sign changes of the signed spread; 0
    when the window spans less than `cycle` s, too short to count steps), hip vertical speed and the share of
    the window with both feet above the track's ground line (its lowest ankle) by more than `contact`."""
    order = np.argsort(t)
    k, t = k[order].astype(np.float64), np.asarray(t, np.float64)[order]
    per = pose_features(k)
    torso = float(np.median(torso_length(k[..., :2])))
    signed = (k[:, L_ANK, 0] - k[:, R_ANK, 0]) / torso
    spread = np.abs(signed)  # a pose model may swap left and right in a profile view: no sign
    hip_y = (k[:, L_HIP, 1] + k[:, R_HIP, 1]) / 2 / torso
    feet_y = k[:, [L_ANK, R_ANK], 1] / torso
    ground = feet_y.max()
    off = (ground - feet_y.max(1)) > contact  # the lower foot above the ground: both feet off it
    rows = []
    for i in range(len(t)):
        near = np.abs(t - t[i]) <= window + 1e-9
        tn, sn = t[near], signed[near]
        span = max(float(tn.max() - tn.min()), 1e-9)
        steps = np.count_nonzero(np.diff(np.sign(sn[np.abs(sn) > 0.15]))) if near.sum() > 1 else 0
        speed = np.abs(np.diff(hip_y[near]) / np.diff(tn).clip(1e-6)) if near.sum() > 1 else np.zeros(1)
        rows.append({
            **{name: float(v[i]) for name, v in per.items()},
            "stride_amplitude": float(np.ptp(spread[near])),
            "airborne": float(off[near].mean()),
            "hip_velocity": float(speed.mean()),
            "cadence": steps / span if span >= cycle else 0.0,
        })
    out = pd.DataFrame(rows, columns=list(FEATURES))
    out.index = order
    return out.sort_index()


def name_action(centroid: dict[str, float], rules: ActionRules, wanted: list[str]) -> str:
    """The action a feature centroid shows, by the rules above; `unlabeled` when none applies or the
    action is not in `wanted`."""
    c = centroid
    striding = c["stride_amplitude"] >= rules.stride_amplitude
    if c["hip_velocity"] >= rules.jump_velocity or (c["airborne"] >= rules.airborne and not striding):
        action = "jumping"
    elif not striding and c["knee_flex"] < rules.still_knee and c["hip_velocity"] < rules.still_velocity:
        action = "standing"
    elif striding and (c["stride"] >= rules.run_stride or c["knee_flex"] >= rules.run_knee
                       or c["cadence"] >= rules.run_cadence):
        action = "running"
    elif striding:
        action = "walking"
    else:
        action = UNLABELED
    return action if action in wanted else UNLABELED


def cluster_actions(features: pd.DataFrame, tracks: list[str], params: ClusteringParams, rules: ActionRules,
                    wanted: list[str]) -> pd.DataFrame:
    """HDBSCAN on the standardised features (each track one cluster), each cluster named by the rules on
    its centroid (in feature units); an instance left as noise is named by its own track's mean.
    `confidence`: the share of the cluster's instances whose own track's mean the rules name the same way;
    `track_action`: that name. Returns (index as `features`): cluster, action, confidence, track_action."""
    wanted = check_actions(wanted)
    ids = [str(i) for i in features.index]
    x = features[list(FEATURES)].to_numpy(np.float64)
    z = (x - x.mean(0)) / x.std(0).clip(1e-6) if len(x) else x
    z = z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-6) if len(z) else z
    clusters = cluster_embeddings(ids, z, "action", params, groups=list(tracks)).set_index("id")
    track_of = pd.Series(list(tracks), index=ids)
    frame = features.set_axis(ids)[list(FEATURES)]
    track_action = {tr: name_action(g.mean().to_dict(), rules, wanted) for tr, g in frame.groupby(track_of)}
    out = pd.DataFrame(index=ids, columns=["cluster", "action", "confidence"])
    out["track_action"] = [track_action[track_of[i]] for i in ids]
    out["cluster"] = clusters.loc[ids, "cluster"].to_numpy()
    for cluster, members in out.groupby("cluster").groups.items():
        own = [track_action[track_of[i]] for i in members]
        if cluster == NOISE:
            out.loc[members, "action"], out.loc[members, "confidence"] = own, 1.0
            continue
        action = name_action(frame.loc[members].mean().to_dict(), rules, wanted)
        out.loc[members, "action"] = action
        out.loc[members, "confidence"] = float(np.mean([a == action for a in own]))
    out["confidence"] = out.confidence.astype(float)
    return out.set_axis(features.index)

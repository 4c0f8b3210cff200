"""Action features on hand-built skeletons (a running cycle, a standing pose, a jump) and the naming rules."""

import math

import numpy as np
import pandas as pd
import pytest

from animation_lora.clustering import ClusteringParams
from animation_lora.pose.actions import (
    FEATURES,
    ActionRules,
    angle,
    check_actions,
    cluster_actions,
    name_action,
    track_features,
)


def skeleton(thigh=(0.0, 0.0), knee=(0.0, 0.0), lift=0.0, x=0.0, scale=100.0) -> np.ndarray:
    """COCO-17 (17, 3) of a front-facing figure: torso 1 unit, thigh and shin 0.7 each; angles in degrees
    from straight down (positive towards image right); `lift` raises the whole body (torso units)."""
    k = np.zeros((17, 3))
    k[:, 2] = 1.0
    hip_y = 0.0 - lift
    k[5, :2], k[6, :2] = (0.2, hip_y - 1), (-0.2, hip_y - 1)  # shoulders
    k[0, :2] = (0.0, hip_y - 1.4)
    k[7, :2], k[8, :2] = (0.25, hip_y - 0.6), (-0.25, hip_y - 0.6)  # elbows
    k[9, :2], k[10, :2] = (0.25, hip_y - 0.2), (-0.25, hip_y - 0.2)  # wrists
    for side, (hip, kn, an) in enumerate(((11, 13, 15), (12, 14, 16))):
        k[hip, :2] = (0.1 if side == 0 else -0.1, hip_y)
        a = math.radians(thigh[side])
        k[kn, :2] = k[hip, :2] + 0.7 * np.array([math.sin(a), math.cos(a)])
        b = a - math.radians(knee[side])
        k[an, :2] = k[kn, :2] + 0.7 * np.array([math.sin(b), math.cos(b)])
    k[:, :2] = k[:, :2] * scale + (x, 300.0)
    return k


def running(n=12, fps=12.0, cycle=0.6, x0=0.0, scale=100.0):
    t = np.arange(n) / fps
    poses = []
    for ti in t:
        s = math.sin(2 * math.pi * ti / cycle)
        poses.append(skeleton((42 * s, -42 * s), (20 + 70 * max(0, -s), 20 + 70 * max(0, s)),
                              lift=0.12 * abs(s), x=x0 + 300 * ti, scale=scale))
    return np.stack(poses), t


def standing(n=12, fps=12.0, x0=0.0, scale=100.0):
    t = np.arange(n) / fps
    return np.stack([skeleton((-4, 4), x=x0, scale=scale) for _ in t]), t


def jumping(n=12, fps=12.0):
    t = np.arange(n) / fps
    return np.stack([skeleton((-10, 10), (30, 30), lift=3.0 * (u % 1) * (1 - u % 1)) for u in t]), t


def test_angle_is_the_bend_at_the_joint():
    a, b = np.array([0.0, 0.0]), np.array([0.0, 1.0])
    assert angle(a, b, np.array([0.0, 2.0])) == pytest.approx(0.0, abs=1e-6)
    assert angle(a, b, np.array([1.0, 1.0])) == pytest.approx(90.0)


def test_features_do_not_depend_on_position_or_scale():
    k, t = running()
    moved = k.copy()
    moved[..., :2] = moved[..., :2] * 0.4 + 57.0
    pd.testing.assert_frame_equal(track_features(k, t), track_features(moved, t), atol=1e-6)


def test_a_running_cycle_differs_from_standing():
    run, stand = track_features(*running()).mean(), track_features(*standing()).mean()
    assert run.stride_amplitude > 1.0 and stand.stride_amplitude < 0.05
    assert run.knee_flex > 30 and stand.knee_flex < 1
    assert run.cadence == pytest.approx(2 / 0.6, rel=0.35)  # two steps per 0.6 s cycle
    assert stand.cadence == 0 and stand.hip_velocity == pytest.approx(0.0)


def test_the_rules_name_run_stand_jump():
    wanted = ["running", "jumping", "walking", "standing"]
    for (k, t), action in ((running(), "running"), (standing(), "standing"), (jumping(), "jumping")):
        assert name_action(track_features(k, t).mean().to_dict(), ActionRules(), wanted) == action
    # an action that was not requested stays unlabeled
    run = track_features(*running()).mean().to_dict()
    assert name_action(run, ActionRules(), ["standing"]) == "unlabeled"


def test_a_walk_is_a_stride_without_bent_knees_or_a_fast_cadence():
    c = dict.fromkeys(FEATURES, 0.0) | {"stride": 0.9, "stride_amplitude": 1.4, "knee_flex": 15, "cadence": 2}
    assert name_action(c, ActionRules(), ["walking", "running"]) == "walking"
    assert name_action(c | {"knee_flex": 45}, ActionRules(), ["walking", "running"]) == "running"


def test_an_unknown_action_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"\['dancing'\].*running, jumping, walking, standing"):
        check_actions(["running", "dancing"])


def test_clusters_are_named_by_their_centroid():
    parts, tracks = [], []
    for i in range(3):
        for name, (k, t) in (("run", running(x0=50 * i, scale=80 + 20 * i)), ("stand", standing(x0=40 * i))):
            parts.append(track_features(k, t))
            tracks += [f"{name}{i}"] * len(t)
    features = pd.concat(parts, ignore_index=True)
    out = cluster_actions(features, tracks, ClusteringParams(min_cluster_size=4, min_samples=2),
                          ActionRules(), ["running", "standing"])
    truth = ["running" if tr.startswith("run") else "standing" for tr in tracks]
    assert list(out.action) == truth and (out.confidence == 1.0).all()
    assert out.groupby("cluster").action.nunique().max() == 1

"""Pose nodes on hand-made inputs: no instances, an instance without a human pose, an unknown action,
a film without ground truth, skeleton images in crop pixels."""

import numpy as np
import pandas as pd
import pytest

from animation_lora.evaluation.pose import score_poses
from animation_lora.pipelines.pose.nodes import (
    build_pose_datasets,
    draw_skeletons,
    estimate_poses,
    label_actions,
)
from animation_lora.pose.body import LEGS_HIDDEN, NO_POSE, PoseParams
from tests.test_actions import running, standing

INDEX_COLUMNS = ["instance_id", "frame_id", "shot", "track", "x0", "y0", "x1", "y1", "kept"]
FRAMES = pd.DataFrame({"frame_id": ["f000000"], "timestamp": [0.0]})
MEDIAPIPE = {"backend": "mediapipe"}


def test_no_character_instances_names_the_pipeline_to_run_first():
    with pytest.raises(ValueError, match=r"run `kedro run --pipelines=preprocessing` first"):
        estimate_poses({}, pd.DataFrame(columns=INDEX_COLUMNS), FRAMES, MEDIAPIPE)


def test_an_instance_without_a_human_pose_is_skipped_and_counted():
    blank = np.full((120, 60, 4), 255, np.uint8)  # a flat shape: no person (as an animal or a robot)
    index = pd.DataFrame([["f000000_0", "f000000", 0, "s0_t0", 10, 20, 70, 140, True]], columns=INDEX_COLUMNS)
    table = estimate_poses({"f000000_0": blank}, index, FRAMES, MEDIAPIPE)
    assert list(table.detected) == [False] and table.reason[0] == NO_POSE and table.keypoints[0] is None
    actions = label_actions(table, PoseParams())
    assert list(actions.action) == ["unlabeled"] and actions.reason[0] == NO_POSE
    metrics = score_poses(table, actions, pd.DataFrame(columns=["instance_id", "identity"]), PoseParams(),
                          None)
    assert metrics == {"ground_truth": False, "instances": 1, "detected": 0, "skipped": 1,
                       "backend": "mediapipe", "legs_not_visible": 0, "actions": {"unlabeled": 1}}


def keypoint_table(tracks):
    rows = []
    for name, (k, t) in tracks.items():
        for i, (ki, ti) in enumerate(zip(k, t)):
            rows.append(dict(instance_id=f"f{i:06d}_{name}", frame_id=f"f{i:06d}", shot=0, track=name,
                             timestamp=float(ti), detected=True, keypoints=ki.ravel().tolist(), reason="",
                             backend="test"))
    return pd.DataFrame(rows)


def test_actions_per_track_and_an_unknown_action():
    table = keypoint_table({"a": running(), "b": standing(x0=400.0), "c": running(x0=900.0, scale=60.0),
                            "d": standing(x0=200.0, scale=150.0)})
    actions = label_actions(table, PoseParams(actions=["running", "standing"])).set_index("instance_id")
    truth = table.set_index("instance_id").track.map({"a": "running", "c": "running"}).fillna("standing")
    assert (actions.action == truth.loc[actions.index]).all()
    with pytest.raises(ValueError, match=r"\['dancing'\].*knows running, jumping, walking, standing"):
        label_actions(table, PoseParams(actions=["dancing"]))


def test_skeletons_are_drawn_in_crop_pixels():
    k, _ = standing(n=1)
    table = keypoint_table({"a": (k, np.zeros(1))})
    x0, y0 = int(k[..., 0].min()) - 10, int(k[..., 1].min()) - 10
    x1, y1 = int(k[..., 0].max()) + 10, int(k[..., 1].max()) + 10
    row = [table.instance_id[0], "f000000", 0, "a", x0, y0, x1, y1, True]
    index = pd.DataFrame([row], columns=INDEX_COLUMNS)
    image = np.asarray(draw_skeletons(table, index, PoseParams())[table.instance_id[0]])
    assert image.shape == (y1 - y0, x1 - x0, 3)
    nose = k[0, 0, :2] - (x0, y0)
    assert image[int(nose[1]), int(nose[0])].any()  # a keypoint dot where the nose is
    assert not image[:5].any() and not image[-5:].any()  # nothing drawn off the skeleton


def test_a_close_up_without_legs_has_no_action_and_no_dataset():
    k, t = standing()
    k[:, 11:, 2] = 0.05  # hips, knees, ankles guessed at low scores: a close-up (a table hides the legs)
    table = keypoint_table({"a": (k, t)})
    actions = label_actions(table, PoseParams())
    assert (actions.action == "unlabeled").all() and (actions.reason == LEGS_HIDDEN).all()
    index = pd.DataFrame([[i, "f000000", 0, "a", 0, 0, 50, 100, True] for i in table.instance_id],
                         columns=INDEX_COLUMNS)
    clusters = pd.DataFrame({"instance_id": table.instance_id, "cluster": "character_0"})
    main, each = build_pose_datasets({}, actions, index, clusters, PoseParams(), {"backend": "template"},
                                     None)
    assert main.name == "pose" and not main.images and each == {} and "no requested action" in main.skipped
    assert "legs not visible" in main.skipped
    metrics = score_poses(table, actions, pd.DataFrame(columns=["instance_id", "identity"]), PoseParams(),
                          None)
    assert metrics["legs_not_visible"] == len(t) and metrics["detected"] == len(t)


def test_the_shipped_pose_parameters_parse():
    import yaml

    from animation_lora.backends.pose import MmPose, RtmPose, make_pose_estimator
    from animation_lora.params import check_arguments, parse
    from animation_lora.pose.body import PoseDatasetParams, PoseParams
    from tests.conftest import PROJECT_ROOT

    base = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_pose.yml").read_text())["pose"]
    assert parse(PoseParams, base, "pose").actions == ["running", "jumping", "walking", "standing"]
    assert parse(PoseDatasetParams, base["dataset"], "pose.dataset").trigger_template == "{name} pose"
    assert make_pose_estimator(base["estimator"]).name == "mediapipe"
    studio = yaml.safe_load((PROJECT_ROOT / "conf/studio/parameters_pose.yml").read_text())["pose"]
    check_arguments(RtmPose, studio["estimator"]["rtmpose"], "pose.estimator.rtmpose")
    check_arguments(MmPose, studio["estimator"]["mmpose"], "pose.estimator.mmpose")
    with pytest.raises(ValueError, match=r"`pose.window`: Input should be a valid number"):
        parse(PoseParams, {"window": "half a second"}, "pose")

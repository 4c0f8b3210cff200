"""`kedro run --pipelines=pose` on the tiny demo film, after preprocessing, through KedroSession."""

import json

import pytest

from tests.conftest import run_session


def metrics(project, name):
    return json.loads(
        next((project / "data" / "08_reporting" / f"{name}_metrics.json").glob("*/*.json")).read_text()
    )


def test_pose_before_preprocessing_says_what_to_run_first(kedro_project):
    with pytest.raises(RuntimeError, match=r"run `kedro run --pipelines=preprocessing` first"):
        run_session(kedro_project, "pose")


@pytest.mark.slow
def test_pose_run_scores_keypoints_and_actions(kedro_project):
    run_session(kedro_project, "preprocessing")
    run_session(kedro_project, "pose")
    m = metrics(kedro_project, "pose")
    print(json.dumps(m, indent=1))
    assert m["ground_truth"] and m["instances_scored"] >= 20
    assert m["action_accuracy"] >= 0.8
    assert m["pck@0.1"] >= 0.25
    data = kedro_project / "data"
    (sets,) = (data / "05_model_input" / "pose_loras").glob("*/pose_loras")
    found = {p.name for p in sets.iterdir()}
    assert found and found <= {"running", "jumping", "walking", "standing"}
    for name in found:
        captions = [p.read_text() for p in (sets / name / "images").glob("*.txt")]
        assert captions and all(c.startswith(f"{name} pose, ") for c in captions)
        assert not any(w in c for c in captions for w in ("marco", "nina", "character_"))
    (skeletons,) = (data / "04_feature" / "pose_skeletons").glob("*")
    assert len(list(skeletons.glob("*.png"))) == m["detected"]

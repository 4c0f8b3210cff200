"""`kedro run --pipelines=pose` on the tiny demo film, after preprocessing, through KedroSession."""

import json
import shutil

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
    # The issue asks >= 0.8. Measured: ~0.86 of the default demo film's tracks (every 2nd frame, 12 fps,
    # MediaPipe; docs/metrics.md), but 0.55 here: the tiny film's tracks are 3 frames over 0.33 s, too short
    # for stride amplitude and cadence, and MediaPipe's keypoints on its small figures are noisy.
    assert m["action_accuracy"] >= 0.5
    by_action = m["action_accuracy_by_action"]
    assert by_action["standing"] >= 0.9 and by_action["jumping"] >= 0.5
    assert m["pck@0.1"] >= 0.3  # 0.38 measured (MediaPipe on cartoon figures; joints drawn, not anatomical)
    data = kedro_project / "data"
    (sets,) = (data / "05_model_input" / "pose_loras").glob("*/pose_loras")
    found = {p.name for p in sets.iterdir()}
    assert found and found <= {"running", "jumping", "walking", "standing"}
    for name in found:
        captions = [p.read_text() for p in (sets / name / "images").glob("*.txt")]
        assert captions and all(c.startswith(f"{name} pose, ") for c in captions)
        assert not any(w in c for c in captions for w in ("marco", "nina", "character_"))
    skeletons = list((data / "04_feature" / "pose_skeletons").glob("*/pose_skeletons/*.png"))
    assert len(skeletons) == m["detected"]


@pytest.fixture(scope="module")
def default_film(tmp_path_factory):
    """The default demo film (12 shots of 24 frames at 12 fps, 512x288): tracks long enough for motion."""
    from animation_lora.demo import render_demo_film

    return render_demo_film(tmp_path_factory.mktemp("default") / "demo_film", preset="default", seed=0)


@pytest.mark.slow
def test_pose_and_expression_on_the_default_demo_film(kedro_project, default_film):
    """The issue's bar (action and expression accuracy >= 0.8) on the default demo film, whose tracks are long
    enough for motion and whose faces are big enough for FaceMesh."""
    film_dir = kedro_project / "data" / "01_raw" / "demo_film"
    shutil.rmtree(film_dir)
    shutil.copytree(default_film.parent, film_dir)
    defaults = {"preprocessing": {"character_clustering": {"min_cluster_size": 15, "min_samples": 3}}}
    run_session(kedro_project, "preprocessing", runtime_params=defaults)
    run_session(kedro_project, "pose", runtime_params=defaults)
    run_session(kedro_project, "expression", runtime_params=defaults)
    m = metrics(kedro_project, "pose")
    print(json.dumps(m, indent=1))
    assert m["instances_scored"] >= 150
    assert m["action_accuracy"] >= 0.8  # 0.94 measured (docs/metrics.md)
    assert min(m["action_accuracy_by_action"].values()) >= 0.7
    assert m["pck@0.1"] >= 0.35  # 0.41 measured
    (sets,) = (kedro_project / "data" / "05_model_input" / "pose_loras").glob("*/pose_loras")
    assert {p.name for p in sets.iterdir()} == {"running", "jumping", "walking", "standing"}
    faces = metrics(kedro_project, "expression")
    assert faces["accuracy"] >= 0.8 and faces["kept_accuracy"] >= 0.9  # 0.96 and 1.0 measured
    assert set(faces["kept"]) == {"happy", "surprised"}

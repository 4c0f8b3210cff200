"""`kedro run --pipelines=preprocessing` on the tiny demo film, through a real KedroSession."""

import json
import sqlite3

import pandas as pd
import pytest

from tests.conftest import run_session


def versions(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".partial"))


@pytest.mark.slow
def test_preprocessing_run_scores_against_ground_truth_and_never_overwrites(kedro_project):
    run_session(kedro_project, "preprocessing")
    data = kedro_project / "data"
    (metrics_version,) = versions(data / "08_reporting" / "preprocessing_metrics.json")
    metrics = json.loads(
        (
            data
            / "08_reporting"
            / "preprocessing_metrics.json"
            / metrics_version
            / "preprocessing_metrics.json"
        ).read_text()
    )
    assert metrics["shot_coverage"] == 1.0
    assert metrics["cut_precision"] == 1.0 and metrics["cut_recall"] == 1.0
    assert metrics["shot_id_matches_truth"]
    (frames_version,) = versions(data / "02_intermediate" / "frames")
    pngs = list((data / "02_intermediate" / "frames" / frames_version / "frames").glob("*.png"))
    index = pd.read_parquet(
        data / "02_intermediate" / "frame_index.parquet" / frames_version / "frame_index.parquet"
    )
    assert len(pngs) == index.kept.sum() == metrics["frames_kept"] > 6
    assert set(index.reason) <= {"kept"} | {
        r for r in index.reason if r.startswith(("near-duplicate", "blurred"))
    }
    assert (data / "08_reporting" / "frames_contact_sheet.png").exists()
    # the run was tracked in the project's SQLite MLflow store
    with sqlite3.connect(kedro_project / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 1

    # layered segmentation, character clusters and the character dataset, against the true identities
    seg = json.loads(next((data / "08_reporting" / "segmentation_metrics.json").glob("*/*.json")).read_text())
    assert seg["backend"] == "mediapipe" and seg["mean_instance_iou"] >= 0.7  # at 320x180; 0.87 at 512x288
    assert seg["detection_recall"] >= 0.9 and seg["detection_precision"] >= 0.9
    chars = json.loads(next((data / "08_reporting" / "character_metrics.json").glob("*/*.json")).read_text())
    assert chars["clusters"] == ["character_0", "character_1"]
    assert chars["cluster_ari"] >= 0.9 and chars["dataset_purity"] >= 0.95
    (lora,) = (data / "05_model_input" / "character_lora").glob("*/character_lora")
    assert len(list((lora / "images").glob("*.png"))) == len(list((lora / "images").glob("*.txt"))) == 8
    assert (data / "08_reporting" / "character_clusters").exists()
    (per_character,) = (data / "05_model_input" / "character_loras").glob("*/character_loras")
    assert sorted(p.name for p in per_character.iterdir()) == ["character_0", "character_1"]  # a LoRA each
    assert seg["ground_truth"] is True  # the demo's truth applies to the demo film (its fingerprint)

    run_session(kedro_project, "preprocessing")  # a rerun adds versions, never overwrites
    assert len(versions(data / "02_intermediate" / "frames")) == 2
    assert frames_version in versions(data / "02_intermediate" / "frames")
    assert len(list((data / "02_intermediate" / "frames" / frames_version / "frames").glob("*.png"))) == len(
        pngs
    )


def metrics_of(project, version):
    path = (
        project
        / "data"
        / "08_reporting"
        / "preprocessing_metrics.json"
        / version
        / "preprocessing_metrics.json"
    )
    return json.loads(path.read_text())


@pytest.mark.slow
def test_load_versions_replays_an_old_layer(kedro_project):
    reporting = kedro_project / "data" / "08_reporting" / "preprocessing_metrics.json"
    run_session(kedro_project, "preprocessing")
    (first,) = versions(reporting)
    run_session(
        kedro_project, "preprocessing", runtime_params={"preprocessing": {"sampling": {"every_n_frames": 3}}}
    )
    second = versions(reporting)[-1]
    kept_first, kept_second = (
        metrics_of(kedro_project, first)["frames_kept"],
        metrics_of(kedro_project, second)["frames_kept"],
    )
    assert kept_second < kept_first
    old_index = versions(kedro_project / "data" / "02_intermediate" / "frame_index.parquet")[0]
    run_session(
        kedro_project,
        "preprocessing",
        node_names=["score_frames_node"],
        load_versions={"frame_index": old_index},
    )
    assert metrics_of(kedro_project, versions(reporting)[-1])["frames_kept"] == kept_first


def test_a_film_path_that_does_not_exist_names_the_parameter(kedro_project):
    with pytest.raises(Exception, match=r"Film not found at '/no/such/film.mp4'.*film_path"):
        run_session(kedro_project, "preprocessing", runtime_params={"film_path": "/no/such/film.mp4"})


@pytest.mark.parametrize("params, named", [
    ({"film_pth": "/films/ep01.mp4"}, r"no node reads `film_pth`; did you mean film_path\?"),
    ({"hf_token": "hf_s3cr3t9431"}, r"no node reads `hf_token`"),
    ({"preprocessing": {"samplng": {"every_n_frames": 3}}},
     r"no node reads `preprocessing\.samplng\.every_n_frames`; did you mean preprocessing\.sampling"),
])
def test_a_params_key_no_node_reads_is_refused_before_the_run(kedro_project, params, named):
    """Issue 25, 7: a typo ran the demo film instead of the user's; an unknown key (a token) was kept in
    MLflow. Both are refused before any node runs (no version is written)."""
    with pytest.raises(ValueError, match=rf"--params: {named}"):
        run_session(kedro_project, "preprocessing", runtime_params=params)
    assert not any((kedro_project / "data" / "02_intermediate").glob("*/*"))
    stored = b"".join(p.read_bytes() for p in kedro_project.rglob("mlflow.db*"))
    assert b"s3cr3t9431" not in stored and b"ep01" not in stored  # nothing of the refused run was logged


def test_a_database_password_in_the_parameters_is_refused_and_never_stored(kedro_project):
    """Issue 25, 1: `--params training.search.storage=postgresql://optuna:<password>@…` put the password into
    mlflow.db. It is refused before any hook logs it, and the message does not repeat it."""
    url = "postgresql://optuna:pw7391xq@db.example/optuna"
    with pytest.raises(ValueError, match=r"`training\.search\.storage` holds a URL with a password") as err:
        run_session(kedro_project, "preprocessing", runtime_params={"training": {"search": {"storage": url}}})
    assert "pw7391xq" not in str(err.value)
    stored = b"".join(p.read_bytes() for p in kedro_project.rglob("*") if p.is_file() and "mlflow" in p.name)
    assert b"pw7391xq" not in stored


@pytest.mark.slow
def test_an_unknown_cluster_name_is_an_error_listing_the_clusters(kedro_project):
    with pytest.raises(ValueError, match=r"No character cluster named 'luca'.*character_0"):
        run_session(
            kedro_project,
            "preprocessing",
            runtime_params={"preprocessing": {"character_dataset": {"character": "luca"}}},
        )

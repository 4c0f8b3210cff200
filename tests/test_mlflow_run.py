"""The Kedro run's MLflow run through a real KedroSession: a failed run is marked FAILED and closed once
(kedro-mlflow reopens the run at every node; with `nested: true` it was stacked once per node, so it was
"closed" that many times and stayed active after a run)."""

import sqlite3

import mlflow
import pytest
from kedro.framework.project import configure_project
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def test_a_failed_run_is_closed_once_and_marked_failed(kedro_project, capfd):
    bootstrap_project(kedro_project)
    configure_project("animation_lora")
    # the fourth node fails: every frame is too small for the quality filter
    too_small = {"preprocessing": {"quality": {"min_width": 10_000}}}
    with pytest.raises(ValueError, match="dropped all .* frames: .* too small"):
        with KedroSession.create(project_path=kedro_project, runtime_params=too_small) as session:
            session.run(pipeline_names=["preprocessing"])
    printed = " ".join(capfd.readouterr().out.split())  # kedro's rich handler, lines wrapped
    assert printed.count("was closed because") == 1 and mlflow.active_run() is None
    with sqlite3.connect(kedro_project / "mlflow.db") as db:
        assert db.execute("select status from runs where name = 'preprocessing'").fetchall() == [("FAILED",)]

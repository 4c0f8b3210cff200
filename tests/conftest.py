"""Shared fixtures: the tiny demo film (rendered once per test session) and a throw-away copy of the
Kedro project that points at it, so pipeline tests run a real KedroSession without touching data/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from animation_lora.demo import GroundTruth, render_demo_film

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_film(tmp_path_factory) -> Path:
    """Path to the tiny demo film (6 shots x 6 frames, 320x180); its ground truth lies beside it."""
    return render_demo_film(tmp_path_factory.mktemp("tiny") / "demo_film", preset="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_truth(tiny_film) -> GroundTruth:
    return GroundTruth(tiny_film.parent / "ground_truth")


@pytest.fixture
def kedro_project(tmp_path, tiny_film, monkeypatch) -> Path:
    """A copy of this project's conf in a temp folder, its film_path set to the tiny film."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", root / "conf" / "base")
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # bootstrap_project wants it; the package itself is installed
    film_dir = root / "data" / "01_raw" / "demo_film"
    shutil.copytree(tiny_film.parent, film_dir)
    (root / "conf" / "local" / "globals.yml").write_text(
        f"film_path: {film_dir / 'film.mp4'}\ndemo_dir: {film_dir}\n"
    )
    monkeypatch.chdir(root)  # the SQLite MLflow store is relative to the working directory
    return root


# The tiny film has ~10 instances per character: the seed's min_cluster_size 15 is for real films.
TINY_PARAMS = {
    "preprocessing": {
        "character_clustering": {"min_cluster_size": 4, "min_samples": 2},
        "character_dataset": {"target_size": 8},
    },
    "background": {
        "scene_clustering": {"min_cluster_size": 3, "min_samples": 2},
        "scene_dataset": {"target_size": 6},
    },
    "pose": {"dataset": {"min_images": 2, "target_size": 6}},
    "expression": {"dataset": {"min_images": 2, "target_size": 6}},
    # the search no longer picks the epochs (the early stop does): 2 keep a loss curve on the smallest sets
    "training": {"search": {"n_trials": 3}, "args": {"max_train_epochs": 2}},
    "composition": {
        "num_samples": 1,
        "sampling": {"steps": 4},
        "weight_search": {"n_trials": 2, "seeds": [0]},
    },
}


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_session(project: Path, pipeline: str, **kwargs):
    """Run a pipeline of the project copy through a real KedroSession, with the tiny film's parameters."""
    from kedro.framework.project import configure_project
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    configure_project("animation_lora")
    import mlflow

    try:
        params = deep_merge(TINY_PARAMS, kwargs.pop("runtime_params", None) or {})
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            session.run(pipeline_names=[pipeline], **kwargs)
    finally:
        # kedro-mlflow 2.0.3 leaves its run open after an in-process session on kedro 1.7 (the CLI
        # process closes it at exit); close it so the next session starts its own run.
        while mlflow.active_run():
            mlflow.end_run()

"""Issue 25, items 4 and 5, through the `kedro` CLI: `kill -9` at three different nodes leaves nothing that a
later run reads as "latest" (the killed run's versions are set aside as *.failed, the next run reads the last
complete run's), the rerun ends as an uninterrupted run; and a second run while one is going on is refused,
naming it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_session

KEDRO = Path(sys.executable).with_name("kedro")
ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
       "MLFLOW_DISABLE_TELEMETRY": "true"}


def versions(project: Path, dataset: str) -> list[str]:
    """The complete versions of a dataset (what Kedro's latest-version glob can pick), oldest first."""
    folder = project / dataset
    name = Path(dataset).name
    return sorted(v.name for v in folder.iterdir() if (v / name).exists()) if folder.exists() else []


def kedro(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(KEDRO), "run", *args], cwd=project, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def kill_when(process: subprocess.Popen, ready, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not ready() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(60)
    assert process.returncode == -signal.SIGKILL, "the run ended before the node it was to be killed at"


TABLES = ("data/02_intermediate/frame_index.parquet", "data/03_primary/instance_index.parquet",
          "data/04_feature/character_clusters.parquet")


@pytest.mark.slow
def test_kill_9_at_three_nodes_never_leaves_a_latest_version(kedro_project):
    run_session(kedro_project, "preprocessing")  # the last complete run
    complete = {t: versions(kedro_project, t) for t in TABLES}
    assert all(len(v) == 1 for v in complete.values())
    frame_log = "data/02_intermediate/frame_log.parquet"
    instance_index = TABLES[1]
    cache = kedro_project / "data/02_intermediate/shot_cache"
    # killed after ingest saved, during segmentation, and after the instance tables were saved
    moments = [lambda: len(versions(kedro_project, frame_log)) > 1,
               lambda: any((cache / "segment_layers").glob("*/*")),
               lambda: len(versions(kedro_project, instance_index)) > 1]
    for moment in moments:
        shutil.rmtree(cache, ignore_errors=True)  # each victim segments again: it can be killed there
        kill_when(kedro(kedro_project, "--pipelines=preprocessing"), moment)
        assert (kedro_project / "data/.run.json").exists()  # the victim's journal
        # the next run (here: the background pipeline) reads the complete run's layers, never the victim's
        run_session(kedro_project, "background")
        assert not (kedro_project / "data/.run.json").exists()
        for table in TABLES:
            assert versions(kedro_project, table) == complete[table], table
        failed = list((kedro_project / "data").glob("*/*/*/*.failed"))
        assert failed, "the killed run's versions are kept aside for inspection"
    assert len(versions(kedro_project, frame_log)) == 1
    # the rerun ends as the uninterrupted run did
    run_session(kedro_project, "preprocessing")
    for table in TABLES:
        first, last = versions(kedro_project, table)[0], versions(kedro_project, table)[-1]
        name = Path(table).name
        pd.testing.assert_frame_equal(pd.read_parquet(kedro_project / table / first / name),
                                      pd.read_parquet(kedro_project / table / last / name))


@pytest.mark.slow
def test_a_second_run_on_the_same_data_folder_is_refused_naming_the_first(kedro_project):
    first = kedro(kedro_project, "--pipelines=preprocessing")
    deadline = time.time() + 300
    while not (kedro_project / "data/.run.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # paused, alive: it cannot finish before the second one starts
    second = kedro(kedro_project, "--pipelines=preprocessing")
    out, _ = second.communicate(timeout=600)
    assert second.returncode != 0
    said = " ".join(out.split())
    assert f"Another `kedro run` is using this project's data folder: pid {first.pid}" in said
    first.send_signal(signal.SIGKILL)
    first.wait(60)


@pytest.mark.slow
def test_a_from_nodes_run_after_a_partial_run_on_another_film_is_refused(kedro_project, tmp_path):
    from animation_lora.demo import render_demo_film

    other = render_demo_film(tmp_path / "other" / "demo_film", preset="tiny", seed=1)
    run_session(kedro_project, "preprocessing")  # the project's film, complete
    run_session(kedro_project, "preprocessing", to_nodes=["extract_frames_node"],
                runtime_params={"film_path": str(other)})  # frames of another film, then stopped
    with pytest.raises(RuntimeError, match=r"Versions from another film: this run's film is '.*film\.mp4', "
                                           r"but it would read 'frame_index' version \S+ from '.*other"):
        run_session(kedro_project, "preprocessing", from_nodes=["segment_layers_node"])
    assert not (kedro_project / "data/.run.json").exists()  # the refused run holds no lock
    # on the other film the same run is consistent, and goes through
    run_session(kedro_project, "preprocessing", from_nodes=["segment_layers_node"],
                runtime_params={"film_path": str(other)})

"""Resume per shot (issue 20): `kedro run` killed with SIGKILL in the middle of segmentation, started again
with the same film and parameters, reuses the shots it had finished and ends with the same layers as a run
that was never interrupted; a changed parameter recomputes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_session

KEDRO = Path(sys.executable).with_name("kedro")


def entries(cache: Path, stage: str = "segment_layers") -> dict[str, float]:
    """The finished shots of a stage in the cache: entry -> modification time."""
    return {p.name: p.stat().st_mtime for p in (cache / stage).glob("*/*") if not p.name.endswith(".partial")}


def latest(project: Path, folder: str) -> Path:
    versions = sorted(p for p in (project / folder).iterdir() if not p.name.endswith(".partial"))
    return versions[-1]


def layers_of_last_run(project: Path) -> dict:
    """What segmentation saved last: its two tables and a hash of every image it wrote."""
    out = {name: pd.read_parquet(latest(project, f"data/03_primary/{name}.parquet"))
           for name in ("instance_index", "layer_index")}
    for folder in ("character_instances", "instance_masks", "background_layers", "hole_masks"):
        pngs = sorted((latest(project, f"data/03_primary/{folder}") / folder).glob("*.png"))
        out[folder] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in pngs}
    return out


@pytest.mark.slow
def test_a_killed_run_resumes_per_shot_and_ends_as_an_uninterrupted_run(kedro_project, tmp_path):
    straight_cache, cache = tmp_path / "cache_straight", tmp_path / "cache"
    run_session(kedro_project, "preprocessing", runtime_params={"shot_cache": {"dir": str(straight_cache)}})
    straight = layers_of_last_run(kedro_project)
    shots = len(entries(straight_cache))
    assert shots == straight["layer_index"].shot.nunique() >= 4

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    victim = subprocess.Popen([str(KEDRO), "run", "--pipelines=preprocessing", "--params",
                               f"shot_cache.dir={cache}"], cwd=kedro_project, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while len(entries(cache)) < 2 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait(60)
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-segmentation"
    finished = entries(cache)
    assert 2 <= len(finished) < shots

    decoded = {p: p.stat().st_mtime for p in [*cache.glob("*/*.parquet"), *cache.glob("frames/*/*.png")]}
    assert sum(p.suffix == ".parquet" for p in decoded) == 2  # the frame log and the measures
    run_session(kedro_project, "preprocessing", runtime_params={"shot_cache": {"dir": str(cache)}})
    # the film is not decoded again: its frame log, measures and frames come from the cache
    assert {p: p.stat().st_mtime for p in decoded} == decoded
    after = entries(cache)
    assert len(after) == shots
    assert {k: after[k] for k in finished} == finished  # the finished shots were reused, not written again
    resumed = layers_of_last_run(kedro_project)
    for name in ("instance_index", "layer_index"):
        pd.testing.assert_frame_equal(resumed[name], straight[name])
    for folder in ("character_instances", "instance_masks", "background_layers", "hole_masks"):
        assert resumed[folder] == straight[folder] and resumed[folder]

    # a changed segmentation parameter is a new key: every shot is segmented again
    run_session(kedro_project, "preprocessing", runtime_params={
        "shot_cache": {"dir": str(cache)}, "preprocessing": {"layers": {"hole_margin": 5}}})
    assert len(entries(cache)) == 2 * shots

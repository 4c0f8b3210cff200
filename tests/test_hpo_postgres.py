"""A search shared by three worker processes through PostgreSQL (Optuna's RDB storage), one worker killed
with -9 mid-trial: a throwaway PostgreSQL cluster on localhost, started here with Debian's binaries
(`apt-get install postgresql`; the test skips only when they are absent)."""

from __future__ import annotations

import glob
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from animation_lora.hpo import run_search

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
PORT = 54329 + os.getpid() % 500
N_TRIALS = 9
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "network_dim": {"type": "categorical", "choices": [2, 4, 8, 16]},
}


def as_postgres(command: str) -> None:
    """Run a PostgreSQL binary, as the `postgres` user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, timeout=120)
    else:
        subprocess.run(["/bin/sh", "-c", command], check=True, timeout=120)


@pytest.fixture(scope="module")
def postgres_url():
    if not BINARIES:
        pytest.skip("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    bin_dir = Path(BINARIES[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="pg-optuna-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    as_postgres(f"{bin_dir}/initdb -D {data} -U optuna --auth=trust -E UTF8 > {root}/initdb.log 2>&1")
    options = f"-p {PORT} -k {root} -c listen_addresses=127.0.0.1"
    as_postgres(f"{bin_dir}/pg_ctl -D {data} -o '{options}' -l {root}/server.log -w start > /dev/null")
    try:
        as_postgres(f"{bin_dir}/createdb -h 127.0.0.1 -p {PORT} -U optuna search")
        yield f"postgresql://optuna@127.0.0.1:{PORT}/search"
    finally:
        as_postgres(f"{bin_dir}/pg_ctl -D {data} -m immediate stop > /dev/null")
        shutil.rmtree(root, ignore_errors=True)


def search(url: str) -> dict:
    return {
        "n_trials": N_TRIALS,
        "study_name": "shared",
        "storage": url,
        "pruner": "none",
        "seed": 0,
        "heartbeat_interval": 1,
        "convergence": {"patience": 100, "rel_tol": 0.0},
        "space": SPACE,
    }


def slow_quadratic(marks: str):
    def objective(params, report):
        Path(marks, f"{os.getpid()}-{time.time_ns()}").write_text(repr(params))  # "a trial is running"
        time.sleep(600 if marks.endswith("victim") else 1.5)  # the victim is killed inside its trial
        return (params["learning_rate"] - 0.01) ** 2 + params["network_dim"] * 1e-6

    return objective


def worker(url: str, marks: str) -> None:
    run_search(slow_quadratic(marks), search(url))


def test_three_workers_share_one_study_and_a_killed_workers_trial_is_retried(postgres_url, tmp_path):
    optuna.storages.RDBStorage(postgres_url)  # the schema before the race (n_trials 0 is refused now)
    ctx = multiprocessing.get_context("spawn")
    marks = [tmp_path / name for name in ("victim", "w1", "w2")]
    for m in marks:
        m.mkdir()
    procs = [ctx.Process(target=worker, args=(postgres_url, str(m))) for m in marks]
    for p in procs:
        p.start()
    deadline = time.time() + 120
    while not any(marks[0].iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(procs[0].pid, signal.SIGKILL)
    for p in procs[1:]:
        p.join(300)
        assert p.exitcode == 0
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    states = optuna.trial.TrialState
    done = [t for t in study.trials if t.state in (states.COMPLETE, states.PRUNED)]
    # the total asked for, across workers (the two live workers' last asks may overlap by one, as with SQLite)
    assert N_TRIALS <= len(done) <= N_TRIALS + 1
    assert len({tuple(sorted(t.params.items())) for t in done}) == len(done)  # no duplicate parameter sets
    table = [(t.number, t.state.name, t.params, t.user_attrs, t.system_attrs) for t in study.trials]
    killed = [t for t in study.trials if t.state == states.FAIL and "surplus" not in t.user_attrs]
    assert len(killed) == 1, table  # the victim's trial, failed by the heartbeat (not left RUNNING)
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed[0].number]
    assert len(retried) == 1 and retried[0].state == states.COMPLETE
    assert retried[0].params == killed[0].params
    assert not study.get_trials(states=(states.RUNNING, states.WAITING))

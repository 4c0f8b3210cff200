"""kill -9 in the middle of training and of the search, in a separate process, then a restart: training
resumes to the same LoRA with its whole history; the search fails the killed trial, retries it and ends at
exactly the trials asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from safetensors.torch import load_file

TRAIN = """
import sys, numpy as np
from safetensors.torch import save_file
from animation_lora.backends.diffusion import make_base_model
from animation_lora.training import TrainConfig, train_lora
from animation_lora.lora_dataset import build_lora_dataset

cache, resume, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
rng = np.random.default_rng(0)
images = {f"img{k}": rng.integers(0, 255, (80, 64, 3), dtype=np.uint8) for k in range(6)}
captions = {k: f"marco, pose {i}" for i, k in enumerate(images)}
ds = build_lora_dataset("marco", "marco", images, captions, {k: 1.0 for k in images}, None,
                        {"target_size": 6, "resolution": 64, "batch_size": 2})
cfg = TrainConfig(network_dim=4, network_alpha=4, learning_rate=1e-3, resolution=64, train_batch_size=2,
                  max_train_epochs=2, validate_every_n_steps=2, checkpoint_every_n_steps=1, cache_dir=cache,
                  resume=resume)
result = train_lora(make_base_model({"backend": "tiny", "tiny": {"seed": 0}}), ds, cfg,
                    on_step=lambda r: print("step", r["step"], flush=True))
save_file({k: v.contiguous() for k, v in result.unet.state_dict().items() if "lora_" in k}, out)
print("history", len(result.history), flush=True)
"""


def python(*args):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_to_the_same_lora(tmp_path):
    straight = python(TRAIN, str(tmp_path / "a"), "0", str(tmp_path / "a.safetensors"))
    out_a, _ = straight.communicate(timeout=600)
    victim = python(TRAIN, str(tmp_path / "b"), "0", str(tmp_path / "never.safetensors"))
    for line in victim.stdout:
        if line.strip() == "step 3":
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(60)
    assert victim.returncode == -signal.SIGKILL
    assert (tmp_path / "b" / "checkpoints" / "marco" / "last.pt").exists()
    resumed = python(TRAIN, str(tmp_path / "b"), "1", str(tmp_path / "b.safetensors"))
    out_b, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    assert out_a.splitlines()[-1] == out_b.splitlines()[-1]  # the same history length: nothing lost
    assert not (tmp_path / "b" / "checkpoints" / "marco" / "last.pt").exists()  # retired
    assert torch.is_tensor(next(iter(b.values())))


SEARCH = """
import os, sys, time
from pathlib import Path
from animation_lora.hpo import run_search

url, n = sys.argv[1], int(sys.argv[2])
space = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}
def objective(params, report):
    print("trial", flush=True)
    time.sleep(1.0)
    return (params["learning_rate"] - 0.01) ** 2
search = {"n_trials": n, "study_name": "s", "storage": url, "pruner": "none", "seed": 0,
          "heartbeat_interval": 1, "convergence": {"patience": 100, "rel_tol": 0.0}, "space": space}
run_search(objective, search)
"""


def test_a_search_killed_with_sigkill_retries_the_trial_and_ends_at_the_total(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    victim = python(SEARCH, url, "4")
    seen = 0
    for line in victim.stdout:
        seen += line.strip() == "trial"
        if seen == 2:
            # half-way through the 1-second trial: its heartbeat thread has recorded a beat (a trial killed
            # before its first beat is never stale to Optuna, and the restarted search waited for it forever)
            time.sleep(0.5)
            victim.send_signal(signal.SIGKILL)
            break
    victim.wait(60)
    study = optuna.load_study(study_name="s", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]  # killed inside trial 1
    time.sleep(2.5)  # past the heartbeat's grace period
    restarted = python(SEARCH, url, "4")
    restarted.communicate(timeout=300)
    assert restarted.returncode == 0
    study = optuna.load_study(study_name="s", storage=url)
    states = [t.state.name for t in study.trials]
    assert states[1] == "FAIL" and states.count("COMPLETE") == 4 and "RUNNING" not in states
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].params == study.trials[1].params

"""Resume checkpoints carry what they belong to, and the history and per-epoch states a resumed run needs."""

import logging

import numpy as np
import pytest
import torch

from animation_lora.backends.diffusion import make_base_model
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.training import TrainConfig, train_lora

FAST = dict(
    network_dim=4, network_alpha=4, learning_rate=1e-3, resolution=64, train_batch_size=2,
    validate_every_n_steps=2, min_snr_gamma=5.0, max_train_epochs=3, save_every_n_epochs=1,
    checkpoint_every_n_steps=1,
)


class Killed(Exception):
    pass


def kill_at(step):
    def on_step(record):
        if record["step"] == step:
            raise Killed
    return on_step


def make_dataset(seed, name="marco"):
    rng = np.random.default_rng(seed)
    images = {f"img{k}": rng.integers(0, 255, (80, 64, 3), dtype=np.uint8) for k in range(6)}
    captions = {k: f"{name}, 3d animated character, pose {i}" for i, k in enumerate(images)}
    params = {"target_size": 6, "resolution": 64, "batch_size": 2}
    return build_lora_dataset(name, name, images, captions, {k: 1.0 for k in images}, None, params)


@pytest.fixture(scope="module")
def base():
    return make_base_model({"backend": "tiny", "tiny": {"seed": 0}})


def lora(result):
    return {k: v for k, v in result.unet.state_dict().items() if "lora_" in k}


def same(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_a_resumed_run_has_the_full_history_and_the_true_per_epoch_states(base, tmp_path):
    ds = make_dataset(0)
    straight = train_lora(base, ds, TrainConfig(**FAST, cache_dir=str(tmp_path / "a")))
    # 5 training images, batch 2: 3 steps per epoch; killed in epoch 2, after epoch 1 was saved
    with pytest.raises(Killed):
        train_lora(base, ds, TrainConfig(**FAST, cache_dir=str(tmp_path / "b")), on_step=kill_at(5))
    seen = []
    resumed = train_lora(base, ds, TrainConfig(**FAST, cache_dir=str(tmp_path / "b"), resume=True),
                         on_step=seen.append)
    assert same(lora(straight), lora(resumed))
    assert list(resumed.history.step) == list(straight.history.step)
    assert np.allclose(resumed.history.loss.fillna(-1), straight.history.loss.fillna(-1), atol=1e-5)
    assert [r["step"] for r in seen] == list(range(1, straight.steps + 1))  # replayed, then live
    assert sorted(resumed.extra["epoch_states"]) == sorted(straight.extra["epoch_states"]) == [1, 2]
    for epoch, (unet_state, _) in straight.extra["epoch_states"].items():
        assert same(unet_state, resumed.extra["epoch_states"][epoch][0]), f"epoch {epoch}"
    assert not (tmp_path / "b" / "checkpoints" / "marco" / "last.pt").exists()  # retired when finished


def test_a_finished_run_retires_its_checkpoint(base, tmp_path):
    train_lora(base, make_dataset(0), TrainConfig(**FAST, cache_dir=str(tmp_path)))
    assert not (tmp_path / "checkpoints" / "marco" / "last.pt").exists()


@pytest.mark.parametrize(
    "change, named",
    [
        ("dataset", "training set (images, captions, dataset TOML)"),
        ("config", "training.args"),
        ("base", "base model"),
    ],
)
def test_a_checkpoint_of_another_dataset_config_or_base_is_refused(base, tmp_path, caplog, change, named):
    old = dict(FAST, max_train_epochs=1, save_every_n_epochs=0, cache_dir=str(tmp_path))
    ds, cfg = make_dataset(0), dict(old)
    ckpt = tmp_path / "checkpoints" / "marco" / "last.pt"
    other_base = base
    if change == "dataset":
        ds = make_dataset(1)
    elif change == "config":
        cfg["learning_rate"] = 2e-3
    else:
        other_base = make_base_model({"backend": "tiny", "tiny": {"seed": 1}})
    fresh = train_lora(other_base, ds, TrainConfig(**{**cfg, "resume": False}))
    with caplog.at_level(logging.WARNING, logger="animation_lora.training.checkpoint"):
        with pytest.raises(Killed):
            train_lora(base, make_dataset(0), TrainConfig(**old), on_step=kill_at(2))  # the old checkpoint
        assert ckpt.exists()
        caplog.clear()
        resumed = train_lora(other_base, ds, TrainConfig(**{**cfg, "resume": True}))
    assert f"Refused to resume from {ckpt}: it belongs to a different {named}; starting fresh" in caplog.text
    assert same(lora(fresh), lora(resumed))  # trained from scratch, not from the stale state
    assert resumed.history.step.iloc[0] == 0


def test_checkpoints_load_with_weights_only(base, tmp_path):
    with pytest.raises(Killed):
        train_lora(base, make_dataset(0), TrainConfig(**FAST, cache_dir=str(tmp_path)), on_step=kill_at(2))
    ckpt = torch.load(tmp_path / "checkpoints" / "marco" / "last.pt", weights_only=True)
    assert set(ckpt["owner"]) == {"dataset", "config", "base"} and len(ckpt["history"]) == 2

"""Two CPU processes (torchrun, which `accelerate launch` wraps; accelerate picks gloo) train one LoRA
data-parallel: both processes see the
same loss trajectory (the mean over processes), rank 0 alone writes the LoRA, and the LoRA loads in
diffusers. No Kedro: the kohya folder is written here."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tomli_w
from PIL import Image


@pytest.mark.slow
def test_two_cpu_processes_train_one_lora_with_the_same_losses(tmp_path):
    folder = tmp_path / "marco_lora"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(8):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            folder / "images" / f"i{k}.png"
        )
        (folder / "images" / f"i{k}.txt").write_text(f"marco, 3d animated character, pose {k}")
    subset = {"num_repeats": 1, "caption_extension": ".txt"}
    toml = {"general": {}, "datasets": [{"resolution": 64, "batch_size": 2, "subsets": [subset]}]}
    (folder / "dataset.toml").write_text(tomli_w.dumps(toml))
    (folder / "lora.json").write_text(json.dumps({"name": "marco", "trigger": "marco"}))
    config = tmp_path / "train.yaml"
    args = {
        "network_dim": 4,
        "network_alpha": 4,
        "learning_rate": 1e-3,
        "resolution": 64,
        "validation_split": 0.25,
        "validate_every_n_steps": 1,
        "max_train_epochs": 2,
    }
    config.write_text(json.dumps({"args": args, "diffusion": {"backend": "tiny", "tiny": {"seed": 0}}}))
    out = tmp_path / "marco.safetensors"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "animation_lora.training",
        "--dataset",
        str(folder),
        "--config",
        str(config),
        "--output",
        str(out),
        "--rank-histories",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    h0, h1 = (pd.read_csv(tmp_path / f"marco.rank{r}.csv") for r in (0, 1))
    # 6 training images, batch 2, 2 processes: 2 steps per epoch (3 batches split 2 + 1), 2 epochs
    assert h0.step.max() == 4
    pd.testing.assert_frame_equal(h0, h1, rtol=1e-6)
    assert out.exists() and "Wrote" in done.stdout

    import torch
    from diffusers import StableDiffusionPipeline  # noqa: F401  (loads the kohya file below)
    from safetensors.torch import load_file

    from animation_lora.backends.diffusion import tiny

    lora = load_file(str(out))
    assert any(k.startswith("lora_unet_") and k.endswith("lora_down.weight") for k in lora)
    pipe = tiny(seed=0, device="cpu").pipeline()
    pipe.load_lora_weights(lora, adapter_name="marco")
    assert "marco" in pipe.get_list_adapters()["unet"]
    assert all(torch.isfinite(v).all() for v in lora.values())

"""The pretraining configurations and the U-Net stage's learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

CONFIGS = {  # `demo`: the committed base (docs/demo_base.md); `tiny`: the tests'
    "demo": dict(size=64, batch=8, steps=9000, vae_steps=1000, decay_steps=3000, vae_widths=(16, 32, 64),
                 widths=(32, 64, 128), attention_levels=2, text_width=64, text_layers=2, vae_lr=1e-3, lr=4e-4,
                 kl=1e-6, dropout=0.1, sample_steps=20),
    "tiny": dict(size=32, batch=2, steps=4, vae_steps=2, decay_steps=1, vae_widths=(8, 16), widths=(16, 32),
                 attention_levels=1, text_width=16, text_layers=1, vae_lr=1e-3, lr=1e-3, kl=1e-6,
                 dropout=0.5, sample_steps=2),
}
WORK = Path("data/06_models/cache/demo_pretrain")  # the checkpoints' folder: <config>-seed<seed>/


def learning_rate(step: int, config: dict) -> float:
    """The U-Net stage's rate: constant, then a cosine down to a tenth of it over the last `decay_steps`."""
    into = step - (config["steps"] - config["decay_steps"])
    if into < 0:
        return config["lr"]
    return config["lr"] * (0.1 + 0.45 * (1 + math.cos(math.pi * into / config["decay_steps"])))

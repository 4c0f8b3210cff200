"""The pretraining configurations and the U-Net stage's learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

CONFIGS = {  # `demo`: the committed base (docs/demo_base.md); `tiny`: the tests'
    "demo": dict(size=64, batch=8, steps=15000, vae_steps=5000, decay_steps=2000, vae_decay_steps=1500,
                 vae_widths=(16, 32, 64), widths=(32, 64, 128), attention_levels=2, text_width=64,
                 text_layers=2, vae_lr=1e-3, lr=4e-4, kl=1e-6, edge=1.0, ema_decay=0.999, min_snr_gamma=5.0,
                 dropout=0.1, sample_steps=20),
    "tiny": dict(size=32, batch=2, steps=4, vae_steps=2, decay_steps=1, vae_decay_steps=1, vae_widths=(8, 16),
                 widths=(16, 32), attention_levels=1, text_width=16, text_layers=1, vae_lr=1e-3, lr=1e-3,
                 kl=1e-6, edge=1.0, ema_decay=0.9, min_snr_gamma=5.0, dropout=0.5, sample_steps=2),
}
WORK = Path("data/06_models/cache/demo_pretrain")  # the checkpoints' folder: <config>-seed<seed>/


def learning_rate(step: int, config: dict) -> float:
    """Either stage's rate: constant, then a cosine down to a tenth of it over the stage's last steps
    (`vae_decay_steps` of the VAE's, `decay_steps` of the U-Net's)."""
    if step < config["vae_steps"]:
        rate, end, decay = config["vae_lr"], config["vae_steps"], config["vae_decay_steps"]
    else:
        rate, end, decay = config["lr"], config["steps"], config["decay_steps"]
    into = step - (end - decay)
    if into < 0:
        return rate
    return rate * (0.1 + 0.45 * (1 + math.cos(math.pi * into / decay)))

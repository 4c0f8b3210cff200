"""Resume checkpoints: the LoRA weights, optimizer, scheduler, RNG states and the step, written atomically
(the one node I/O the trainer does itself, so a killed run continues to the same weights)."""

from __future__ import annotations

import random
from pathlib import Path

import torch


def lora_state(module) -> dict[str, torch.Tensor]:
    """A detached copy of a peft-adapted module's LoRA weights (what a save or a checkpoint keeps)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "lora_" in k}


def save_checkpoint(
    path: Path, unet, text_encoder, optimizer, scheduler, rng: random.Random, state: dict
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    py_state = rng.getstate()
    torch.save(
        {
            "unet": lora_state(unet),
            "text_encoder": lora_state(text_encoder),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "py_rng": [py_state[0], list(py_state[1]), py_state[2]],
            "state": dict(state),
        },
        str(path) + ".tmp",
    )
    Path(str(path) + ".tmp").replace(path)


def load_checkpoint(path: Path, unet, text_encoder, optimizer, scheduler, rng: random.Random) -> dict:
    """Restores everything `save_checkpoint` wrote, in place; returns the saved {step, epoch}."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    unet.load_state_dict(ckpt["unet"], strict=False)
    text_encoder.load_state_dict(ckpt["text_encoder"], strict=False)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["torch_rng"])
    version, internal, gauss = ckpt["py_rng"]
    rng.setstate((version, tuple(internal), gauss))
    return dict(ckpt["state"])

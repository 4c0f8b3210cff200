"""Resume checkpoints: the LoRA weights, optimizer, scheduler, RNG states and the step, written atomically
(the one node I/O the trainer does itself, so a killed run continues to the same weights).

A checkpoint carries what it belongs to (`owner`: the training set's fingerprint, the effective
`TrainConfig`, the base model's hash) and the side outputs a resumed run needs to end complete (the history
so far and the saved per-epoch states). A checkpoint of another dataset, config or base model is refused:
the run logs why and starts fresh (the stale file is overwritten by its first save). A finished run retires
its checkpoint (`retire_checkpoint`), so a later `resume: true` cannot pick up a finished run's state."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
# TrainConfig fields that do not change what is trained (where or how often a checkpoint is kept)
NOT_OWNING = ("resume", "cache_dir", "checkpoint_every_n_steps", "cache_latents_to_disk")


def lora_state(module) -> dict[str, torch.Tensor]:
    """A detached copy of a peft-adapted module's LoRA weights (what a save or a checkpoint keeps)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "lora_" in k}


def dataset_fingerprint(dataset, examples) -> str:
    """sha256 of the training images' content (as fitted for training), captions and the dataset TOML."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(ex.key.encode())
        h.update(str(ex.image.shape).encode())
        h.update(ex.image.tobytes())
        h.update(ex.caption.encode())
    h.update(json.dumps(dataset.captions, sort_keys=True).encode())
    h.update(json.dumps(dataset.toml, sort_keys=True, default=str).encode())
    return h.hexdigest()


def checkpoint_owner(dataset, examples, cfg, base) -> dict[str, str]:
    """What a checkpoint belongs to: {dataset, config, base} (strings, so `weights_only` loads them)."""
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_OWNING}
    return {
        "dataset": dataset_fingerprint(dataset, examples),
        "config": json.dumps(config, sort_keys=True, default=str),
        "base": str(base.model_hash),
    }


def save_checkpoint(
    path: Path,
    unet,
    text_encoder,
    optimizer,
    scheduler,
    rng: random.Random,
    state: dict,
    owner: dict[str, str] | None = None,
    history: list[dict] | None = None,
    epoch_states: dict[int, tuple[dict, dict]] | None = None,
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
            "owner": dict(owner or {}),
            "history": [dict(r) for r in history or []],
            "epoch_states": {int(e): list(s) for e, s in (epoch_states or {}).items()},
        },
        str(path) + ".tmp",
    )
    Path(str(path) + ".tmp").replace(path)


def mismatch(saved: dict[str, str], owner: dict[str, str]) -> list[str]:
    """What differs between the checkpoint's owner and this run's (e.g. ['dataset', 'config'])."""
    names = {"dataset": "training set (images, captions, dataset TOML)", "config": "training.args",
             "base": "base model"}
    return [names[k] for k in ("dataset", "config", "base") if saved.get(k) != owner.get(k)]


def load_checkpoint(
    path: Path, unet, text_encoder, optimizer, scheduler, rng: random.Random,
    owner: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Restores everything `save_checkpoint` wrote, in place, and returns {step, epoch, history,
    epoch_states}; None (nothing restored, a warning logged) when the checkpoint belongs to another
    dataset, config or base model than `owner`."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if owner is not None:
        differs = mismatch(ckpt.get("owner", {}), owner)
        if differs:
            log.warning(
                "Refused to resume from %s: it belongs to a different %s; starting fresh",
                path, " and ".join(differs),
            )
            return None
    unet.load_state_dict(ckpt["unet"], strict=False)
    text_encoder.load_state_dict(ckpt["text_encoder"], strict=False)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    torch.set_rng_state(ckpt["torch_rng"])
    version, internal, gauss = ckpt["py_rng"]
    rng.setstate((version, tuple(internal), gauss))
    epochs = {int(e): (s[0], s[1]) for e, s in ckpt.get("epoch_states", {}).items()}
    return {**ckpt["state"], "history": list(ckpt.get("history", [])), "epoch_states": epochs}


def retire_checkpoint(path: Path | None) -> None:
    """A finished run's checkpoint is deleted: `resume: true` resumes only an unfinished run."""
    if path is not None and path.exists():
        path.unlink()
        log.info("Retired the finished run's checkpoint %s", path)


def training_set_fingerprint(dataset) -> str:
    """sha256 of a training set as saved: image content, captions, the dataset TOML (its image_dir, a
    version's folder, left out), so the same data in a new version folder has the same fingerprint."""
    import numpy as np

    from ..image_loop import materialise

    h = hashlib.sha256()
    for key in sorted(dataset.images):
        h.update(key.encode())
        try:
            h.update(np.ascontiguousarray(materialise(dataset.images[key])).tobytes())
        except (OSError, ValueError):
            h.update(b"<unreadable>")
    h.update(json.dumps(dataset.captions, sort_keys=True).encode())
    toml = json.loads(json.dumps(dataset.toml, default=str))
    for ds in toml.get("datasets", []):
        for sub in ds.get("subsets", []):
            sub.pop("image_dir", None)
    h.update(json.dumps(toml, sort_keys=True).encode())
    return h.hexdigest()

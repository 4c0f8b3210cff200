"""The pretraining's resume checkpoint: the weights, both optimizers' tensors and the U-Net stage's moving
average in one safetensors file, the step, losses, latent scale, optimizer groups and configuration as its
metadata; written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

MODULES = ("unet", "vae", "text_encoder")


def checkpoint_state(models, optimizers, ema, step: int, losses: list, scaling: float, config: dict):
    """The checkpoint: weights, optimizer and EMA tensors (safetensors), the rest as metadata (JSON)."""
    tensors, groups = {f"ema.{i}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)}, {}
    for name, module in zip(MODULES, models, strict=True):
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for index, values in sd["state"].items():
            tensors.update({f"opt.{name}.{index}.{k}": v.detach().cpu() for k, v in values.items()})
    meta = dict(step=step, losses=losses, scaling=scaling, groups=groups, config=config,
                ema_step=ema.optimization_step)
    return tensors, {"pretrain": json.dumps(meta)}


def load_pretrain_checkpoint(path: Path, models, optimizers, ema, config: dict) -> tuple[int, list, float]:
    """Restores the weights, optimizers and EMA in place; (step, losses, scaling). A checkpoint of another
    configuration, or one inside its anneal asked for another number of steps, is an error."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["pretrain"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    made, wanted = ({k: v for k, v in c.items() if k != "steps"} for c in (meta["config"], config))
    if made != json.loads(json.dumps(wanted)):
        raise ValueError(
            f"Checkpoint '{path}' was made with another configuration ({meta['config']}); "
            f"remove it or give another --work folder"
        )
    anneal = min(meta["config"]["steps"], config["steps"]) - config["decay_steps"]
    if meta["config"]["steps"] != config["steps"] and meta["step"] > anneal:
        raise ValueError(
            f"Checkpoint '{path}' is at step {meta['step']}, inside the anneal of its "
            f"{meta['config']['steps']}-step run; only a run not yet annealing takes another --steps"
        )
    for name, module in zip(MODULES, models, strict=True):
        module.load_state_dict(
            {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        )
    for name, opt in optimizers.items():
        per_param: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith(f"opt.{name}."):
                index, field = key[len(f"opt.{name}.") :].split(".", 1)
                per_param.setdefault(int(index), {})[field] = value
        opt.load_state_dict({"state": per_param, "param_groups": meta["groups"][name]})
    for i, shadow in enumerate(ema.shadow_params):
        shadow.copy_(tensors[f"ema.{i}"])
    ema.optimization_step = meta["ema_step"]
    return meta["step"], meta["losses"], meta["scaling"]


def save_pretrain_checkpoint(path: Path, tensors: dict, metadata: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path) + ".tmp", metadata=metadata)
    os.replace(str(path) + ".tmp", path)  # a run killed while saving keeps the previous checkpoint

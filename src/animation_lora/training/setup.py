"""What a training run sets up once, and how it is saved and resumed: the LoRA models (`add_lora`), the
optimizer and learning-rate scheduler, prepared by accelerate (gradient accumulation, mixed precision, one
process per GPU), and the resume checkpoint that keeps them with the data RNG's state."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..backends.diffusion import BaseModel
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .model import add_lora, make_accelerator, make_optimizer, parameter_groups

log = logging.getLogger(__name__)


@dataclass
class TrainingSetup:
    """The LoRA models prepared by accelerate with their optimizer and scheduler. `unet_model`/`text_model`
    are the plain modules (what is saved); `unet`/`text_encoder` what runs (wrapped for data parallelism or
    compiled)."""

    accelerator: Any
    unet_model: Any
    text_model: Any
    unet: Any
    text_encoder: Any
    optimizer: Any
    scheduler: Any

    @classmethod
    def build(cls, base: BaseModel, cfg: TrainConfig, total_steps: int) -> TrainingSetup:
        """The accelerator on the base's device, LoRA layers on copies of the base (their initialisation
        draws from torch's global RNG), the optimizer named by `optimizer_type` and `lr_scheduler`."""
        from diffusers.optimization import get_scheduler

        accelerator = make_accelerator(base, cfg)
        unet, text_encoder = add_lora(base, cfg)
        unet_model, text_model = unet, text_encoder
        optimizer = make_optimizer(cfg, parameter_groups(cfg, unet, text_encoder))
        n = accelerator.num_processes  # accelerate steps a prepared scheduler once per process
        scheduler = get_scheduler(
            cfg.lr_scheduler,
            optimizer,
            num_warmup_steps=cfg.lr_warmup_steps * n,
            num_training_steps=total_steps * n,
            num_cycles=cfg.lr_scheduler_num_cycles,
            power=cfg.lr_scheduler_power,
        )
        if cfg.torch_compile:
            unet = torch.compile(unet)
        # a frozen text encoder: nothing to wrap (DDP refuses a module without gradients)
        if cfg.trains_text_encoder:
            unet, text_encoder, optimizer, scheduler = accelerator.prepare(
                unet, text_encoder, optimizer, scheduler
            )
        else:
            unet, optimizer, scheduler = accelerator.prepare(unet, optimizer, scheduler)
        return cls(accelerator, unet_model, text_model, unet, text_encoder, optimizer, scheduler)

    def release(self) -> None:
        """The trained modules get their own forward back: under mixed precision accelerate wraps it to
        return float32, and a float16/bfloat16 pipeline's VAE then refuses the float32 latents (the sample
        images after training, a composition with the trained modules)."""
        for module in (self.unet, self.text_encoder):  # a module accelerate did not wrap is left as it is
            self.accelerator.unwrap_model(module, keep_fp32_wrapper=False)

    def trainable(self) -> list:
        """The LoRA weights the optimizer updates (what gradient clipping clips)."""
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def save(
        self, path: Path, rng: random.Random, state: dict, owner: dict, history: list, saved: dict
    ) -> None:
        """The resume checkpoint (LoRA weights, optimizer, scheduler, RNG states, `state`: step and epoch, the
        history and per-epoch saves so far), written by rank 0 alone."""
        if self.accelerator.is_main_process:
            save_checkpoint(
                path, self.unet_model, self.text_model, self.optimizer, self.scheduler, rng, state, owner,
                history, saved,
            )
        self.accelerator.wait_for_everyone()

    def resume(self, path: Path | None, rng: random.Random, owner: dict, name: str) -> dict | None:
        """Restores the checkpoint in place and returns its {step, epoch, history, epoch_states} when there is
        one and it was this run's (`owner`), else None."""
        if not (path and path.exists()):
            return None
        restored = load_checkpoint(
            path, self.unet_model, self.text_model, self.optimizer, self.scheduler, rng, owner
        )
        if restored is not None:
            log.info("Resumed '%s' at step %d", name, restored["step"])
        return restored

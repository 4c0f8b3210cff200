"""`train_lora`: the training loop, read top to bottom like diffusers' `train_text_to_image_lora.py`: set up
the data, the LoRA models, optimizer, scheduler and accelerator; then the epochs of steps, with validation,
resume checkpoints and kohya's per-epoch saves. `Objective` holds what a step computes (latents, text
embeddings, the loss), `Optimisation` what it changes (weights, optimizer, scheduler, step count)."""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..backends.diffusion import BaseModel
from ..lora_dataset import TrainingSet
from .checkpoint import checkpoint_owner, load_checkpoint, lora_state, retire_checkpoint, save_checkpoint
from .config import DatasetSettings, TrainConfig, dataset_settings
from .data import (
    Example,
    LatentCache,
    batch_masks,
    bucket_batches,
    make_caption,
    masked_mse,
    prepare_examples,
    split_validation,
    tag_frequency,
)
from .model import (
    add_lora,
    check_network_dim,
    encode_text,
    make_accelerator,
    make_optimizer,
    parameter_groups,
)

log = logging.getLogger(__name__)
VALIDATION_TIMESTEPS = (100, 300, 500, 700, 900)


@dataclass
class TrainResult:
    unet: Any
    text_encoder: Any
    history: pd.DataFrame
    steps: int
    epochs: int
    tag_frequency: dict[str, int]
    config: TrainConfig
    settings: DatasetSettings
    extra: dict[str, Any] = field(default_factory=dict)


class Objective:
    """The LoRA-adapted models and what a step asks of them: latents (cached), text embeddings (cached per
    caption while the text encoder is frozen) and the denoising loss, min-SNR weighted."""

    def __init__(self, base: BaseModel, cfg: TrainConfig, unet, text_encoder):
        self.base, self.cfg, self.unet, self.text_encoder = base, cfg, unet, text_encoder
        self.latent_cache = LatentCache(base, cfg.cache_dir if cfg.cache_latents_to_disk else None)
        self.text_cache: dict[str, torch.Tensor] = {}

    def latents(self, example: Example, flipped: bool) -> torch.Tensor:
        image = example.image[:, ::-1].copy() if flipped else example.image
        return self.latent_cache.get(image) if self.cfg.cache_latents else self.latent_cache.encode(image)

    def text(self, captions: list[str]) -> torch.Tensor:
        cfg = self.cfg
        if cfg.text_encoder_lr > 0 or not cfg.cache_text_encoder_outputs:
            with torch.set_grad_enabled(cfg.text_encoder_lr > 0):
                return encode_text(self.base, self.text_encoder, captions, cfg.clip_skip)
        missing = [c for c in dict.fromkeys(captions) if c not in self.text_cache]  # frozen: encode once
        if missing:
            with torch.no_grad():
                encoded = encode_text(self.base, self.text_encoder, missing, cfg.clip_skip)
            self.text_cache.update(zip(missing, encoded, strict=True))
        return torch.stack([self.text_cache[c] for c in captions])

    def loss(self, latents, captions: list[str], noise, timesteps, masks=None) -> torch.Tensor:
        noisy = self.base.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = self.unet(noisy, timesteps, self.text(captions)).sample
        loss = masked_mse(pred, noise, masks)  # masks: the images' alpha with `masked_loss`, else None
        if self.cfg.min_snr_gamma:
            from diffusers.training_utils import compute_snr

            snr = compute_snr(self.base.noise_scheduler, timesteps)
            loss = loss * torch.clamp(snr, max=self.cfg.min_snr_gamma) / snr
        return loss.mean()

    @torch.no_grad()
    def validation_loss(self, examples: list[Example]) -> float:
        """Fixed timesteps and noise: the same number for the same weights (NaN without a validation set)."""
        if not examples:
            return float("nan")
        gen = torch.Generator().manual_seed(1234)  # on the CPU: the same noise on every device
        losses = []
        for ex in examples:
            lat, masks = self.latents(ex, False)[None], batch_masks([ex], [False], self.base.vae.device)
            for t in VALIDATION_TIMESTEPS:
                noise = torch.randn(lat.shape, generator=gen).to(lat.device, lat.dtype)
                step = torch.tensor([t], device=lat.device)
                losses.append(float(self.loss(lat, [ex.caption], noise, step, masks)))
        return float(np.mean(losses))


def draw_batch(batch: list[Example], objective: Objective, settings: DatasetSettings, rng: random.Random):
    """One batch's random draws in kohya's order: flips, captions (shuffled tags, dropout), noise (with the
    noise offset: a per-channel constant, for darker/brighter images), timesteps; and the loss masks."""
    cfg = objective.cfg
    dropout = cfg.caption_dropout_rate or settings.caption_dropout_rate
    flips = [settings.flip_aug and rng.random() < 0.5 for _ in batch]
    latents = torch.stack([objective.latents(e, flip) for e, flip in zip(batch, flips, strict=True)])
    captions = [
        make_caption(e.caption, settings.shuffle_caption, settings.keep_tokens, dropout, rng) for e in batch
    ]
    # drawn from torch's CPU generator, then moved: the same draws on every device, and a resume checkpoint's
    # RNG state (the CPU's) continues them exactly on a GPU too
    noise = torch.randn(latents.shape)
    if cfg.noise_offset:
        noise = noise + cfg.noise_offset * torch.randn(latents.shape[0], latents.shape[1], 1, 1)
    num_steps = objective.base.noise_scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, num_steps, (len(batch),))
    noise, timesteps = noise.to(latents.device, latents.dtype), timesteps.to(latents.device)
    return latents, captions, noise, timesteps, batch_masks(batch, flips, latents.device)


class Optimisation:
    """The LoRA models prepared by accelerate with their optimizer and scheduler, the step count, and the
    resume checkpoint that saves them (with the data RNG's state). `unet_model`/`text_model` are the plain
    modules (what is saved); `unet`/`text_encoder` what runs (wrapped for data parallelism or compiled)."""

    def __init__(self, base: BaseModel, cfg: TrainConfig, total_steps: int, checkpoint: Path | None):
        from diffusers.optimization import get_scheduler

        self.accelerator = make_accelerator(base, cfg)
        unet, text_encoder = add_lora(base, cfg)
        self.unet_model, self.text_model, self.cfg = unet, text_encoder, cfg
        optimizer = make_optimizer(cfg, parameter_groups(cfg, unet, text_encoder))
        n = self.accelerator.num_processes  # accelerate steps a prepared scheduler once per process
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
        self.text_encoder = text_encoder  # frozen: nothing to wrap (DDP refuses a module without gradients)
        if cfg.text_encoder_lr > 0:
            self.unet, self.text_encoder, self.optimizer, self.scheduler = self.accelerator.prepare(
                unet, text_encoder, optimizer, scheduler
            )
        else:
            self.unet, self.optimizer, self.scheduler = self.accelerator.prepare(unet, optimizer, scheduler)
        self.checkpoint, self.state = checkpoint, {"step": 0, "epoch": 0}

    @property
    def step(self) -> int:
        return self.state["step"]

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    def apply(self, objective: Objective, inputs, name: str) -> torch.Tensor | None:
        """One micro-batch; the loss once the accumulated gradients were applied (None while accumulating)."""
        with self.accelerator.accumulate(self.unet):
            loss = objective.loss(*inputs)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"Loss became {float(loss)} at step {self.step} of '{name}'; the last good checkpoint is "
                    f"{self.checkpoint or 'not kept (set cache_dir)'}"
                )
            self.accelerator.backward(loss)
            if self.accelerator.sync_gradients and self.cfg.max_grad_norm:
                params = [p for g in self.optimizer.param_groups for p in g["params"]]
                self.accelerator.clip_grad_norm_(params, self.cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        if not self.accelerator.sync_gradients:
            return None
        self.state["step"] += 1
        return self.accelerator.reduce(loss.detach(), "mean")  # the mean over processes: the same on each

    def save(self, rng: random.Random, owner: dict, history: list, saved: dict) -> None:
        if self.accelerator.is_main_process:  # rank 0 alone writes files
            save_checkpoint(
                self.checkpoint, self.unet_model, self.text_model, self.optimizer, self.scheduler, rng,
                self.state, owner, history, saved,
            )
        self.accelerator.wait_for_everyone()

    def resume(self, rng: random.Random, name: str, owner: dict) -> dict | None:
        """The checkpoint's {history, epoch_states} when it was this run's and restored, else None."""
        if not (self.checkpoint and self.checkpoint.exists()):
            return None
        restored = load_checkpoint(
            self.checkpoint, self.unet_model, self.text_model, self.optimizer, self.scheduler, rng, owner
        )
        if restored is None:
            return None
        self.state = {"step": restored.pop("step"), "epoch": restored.pop("epoch")}
        log.info("Resumed '%s' at step %d", name, self.step)
        return restored


def every(n: int, count: int) -> bool:
    """kohya's `*_every_n_*`: on every n-th count, never when n is 0."""
    return bool(n) and count % n == 0


def train_lora(
    base: BaseModel,
    dataset: TrainingSet,
    cfg: TrainConfig,
    on_step: Callable[[dict[str, float]], None] | None = None,
    should_stop: Callable[[int, float], bool] | None = None,
) -> TrainResult:
    """Train a LoRA on `dataset`. `on_step` receives {step, loss, lr[, val_loss]} (logging comes from the
    caller, e.g. MLflow); `should_stop(step, val_loss)` lets a pruner end the run early."""
    check_network_dim(base, cfg)
    settings = dataset_settings(dataset)
    batch_size, repeats = cfg.train_batch_size or settings.batch_size, settings.num_repeats
    examples = prepare_examples(dataset, cfg, settings)
    if not examples:
        raise ValueError(f"Training set '{dataset.name}' has no readable image")
    train_set, val_set = split_validation(examples, cfg.validation_split, cfg.seed)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # processes under `accelerate launch`: own batches each
    per_epoch = math.ceil(len(bucket_batches(train_set, repeats, batch_size, random.Random(0))) / world)
    total_steps = math.ceil(per_epoch * cfg.max_train_epochs / cfg.gradient_accumulation_steps)
    torch.manual_seed(cfg.seed)  # LoRA initialisation, noise and timesteps
    rng = random.Random(cfg.seed)  # flips and captions
    checkpoint = Path(cfg.cache_dir) / "checkpoints" / dataset.name / "last.pt" if cfg.cache_dir else None
    opt = Optimisation(base, cfg, total_steps, checkpoint)
    objective = Objective(base, cfg, opt.unet, opt.text_encoder)
    rank, world = opt.accelerator.process_index, opt.accelerator.num_processes
    if world > 1:  # data parallel: the same LoRA initialisation, each process its own noise and batches
        torch.manual_seed(cfg.seed + rank)
    owner = checkpoint_owner(dataset, examples, cfg, base) if checkpoint else {}
    restored = opt.resume(rng, dataset.name, owner) if cfg.resume else None
    if restored:  # the history and per-epoch saves from before the kill, replayed to the caller's log
        history, saved = restored["history"], restored["epoch_states"]
        for record in history[1:] if on_step else ():
            on_step(record)
    else:
        history, saved = [{"step": opt.step, "val_loss": objective.validation_loss(val_set)}], {}
    pruned_in = None
    order_rng = random.Random(cfg.seed)
    micro = 0
    with tqdm(total=total_steps, initial=opt.step, desc=f"train {dataset.name}", unit="step") as bar:
        for epoch in range(cfg.max_train_epochs):
            batches = bucket_batches(train_set, repeats, batch_size, order_rng)  # same order when resumed
            if world > 1:  # the same number of batches on every process (padded, as DistributedSampler)
                batches += batches[: -len(batches) % world]
            for batch in batches[rank::world]:
                micro += 1
                if micro <= opt.step * cfg.gradient_accumulation_steps:
                    continue  # already trained before the resume
                loss = opt.apply(objective, draw_batch(batch, objective, settings, rng), dataset.name)
                if loss is None:
                    continue
                bar.update()
                record = {"step": opt.step, "loss": float(loss), "lr": opt.lr()}
                if every(cfg.validate_every_n_steps, opt.step):
                    record["val_loss"] = objective.validation_loss(val_set)
                history.append(record)
                if on_step:
                    on_step(record)
                if checkpoint and every(cfg.checkpoint_every_n_steps, opt.step):
                    opt.save(rng, owner, history, saved)
                if should_stop and "val_loss" in record and should_stop(opt.step, record["val_loss"]):
                    log.info("Stopped early at step %d (pruned)", opt.step)
                    pruned_in = epoch + 1
                    break
            if pruned_in:
                break
            opt.state["epoch"] = epoch + 1
            if (every(cfg.save_every_n_epochs, epoch + 1) and epoch + 1 < cfg.max_train_epochs
                    and epoch + 1 not in saved):  # a resumed run keeps the epoch's own saved state
                # kohya's name-000002 …: every n epochs but the last, which is the LoRA itself
                saved[epoch + 1] = (lora_state(opt.unet_model), lora_state(opt.text_model))
    if pruned_in:
        epochs, extra = pruned_in, {"pruned": True}
    else:
        final = objective.validation_loss(val_set)
        history.append({"step": opt.step, "val_loss": final})
        epochs, extra = cfg.max_train_epochs, {"final_val_loss": final, "epoch_states": saved}
        if cfg.checkpoint_every_n_steps and opt.accelerator.is_main_process:
            retire_checkpoint(checkpoint)
    return TrainResult(
        opt.unet_model,
        opt.text_model,
        pd.DataFrame(history),
        opt.step,
        epochs,
        tag_frequency(examples),
        cfg,
        settings,
        extra,
    )

"""`train_lora`: the training loop, read top to bottom like diffusers' `train_text_to_image_lora.py`: the
data, the RNGs, the setup (LoRA models, optimizer, scheduler, accelerator: `TrainingSetup`), the resume; then
the epochs of steps — each step visible here: draw the batch, add noise, predict, loss, backward, clip,
optimizer and scheduler step — with validation, resume checkpoints and kohya's per-epoch saves."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..backends.diffusion import BaseModel
from ..convergence import plateaued
from ..ids import safe_name
from ..lora_dataset import TrainingSet
from .checkpoint import checkpoint_owner, lora_state, retire_checkpoint
from .config import DatasetSettings, TrainConfig, dataset_settings
from .data import (
    LatentCache,
    batch_masks,
    bucket_batches,
    bucket_histogram,
    example_latents,
    make_caption,
    prepare_examples,
    size_conditions,
    split_validation,
    tag_frequency,
)
from .loss import masked_mse, min_snr_weighted, validation_loss
from .model import check_network_dim, encode_captions, predict_noise
from .setup import TrainingSetup

log = logging.getLogger(__name__)


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
    buckets: dict[tuple[int, int], int] = field(default_factory=dict)  # (w, h) -> pictures x repeats

    @property
    def resolution(self) -> int:
        return self.config.resolution or self.settings.resolution


class BestWeights:
    """The validation curve so far and the LoRA weights of its lowest point (kept in memory: a LoRA is small),
    for the early stop and its `restore`. A resumed run starts its best from the resume."""

    def __init__(self, curve: list[float]):
        self.curve = list(curve)
        self.loss, self.step, self.state = math.inf, None, None

    def offer(self, loss: float, step: int, setup: TrainingSetup) -> None:
        self.curve.append(loss)
        if loss < self.loss:
            self.loss, self.step = loss, step
            self.state = (lora_state(setup.unet_model), lora_state(setup.text_model))

    def restore(self, setup: TrainingSetup) -> bool:
        if self.state is None:
            return False
        for module, state in zip((setup.unet_model, setup.text_model), self.state, strict=True):
            if module is not None and state:
                module.load_state_dict(state, strict=False)
        return True


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
    # the data: every readable image fitted to its bucket with its caption, a held-out validation share
    check_network_dim(base, cfg)
    if base.is_sdxl and cfg.clip_skip > 1:
        log.warning("training.args.clip_skip %d does not apply to SDXL: it conditions on both text encoders' "
                    "penultimate layers already (as sd-scripts)", cfg.clip_skip)
    settings = dataset_settings(dataset)
    batch_size, repeats = cfg.train_batch_size or settings.batch_size, settings.num_repeats
    dropout = cfg.caption_dropout_rate or settings.caption_dropout_rate
    examples = prepare_examples(dataset, cfg, settings)
    if not examples:
        raise ValueError(f"Training set '{dataset.name}' has no readable image")
    train_set, val_set = split_validation(examples, cfg.validation_split, cfg.seed)
    world = int(os.environ.get("WORLD_SIZE", "1"))  # processes under `accelerate launch`: own batches each
    per_epoch = math.ceil(len(bucket_batches(train_set, repeats, batch_size, random.Random(0))) / world)
    total_steps = math.ceil(per_epoch * cfg.max_train_epochs / cfg.gradient_accumulation_steps)
    if cfg.max_train_steps:  # the step budget (the learning-rate schedule spans what will be trained)
        total_steps = min(total_steps, cfg.max_train_steps)

    # the RNGs: torch's global one for the LoRA initialisation, noise and timesteps; python's for flips and
    # captions; another for the batches' order (the same order when resumed)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    order_rng = random.Random(cfg.seed)

    # the LoRA models, optimizer and scheduler prepared by accelerate; the latent and text-encoder caches
    setup = TrainingSetup.build(base, cfg, total_steps)
    accelerator, unet, text_encoder = setup.accelerator, setup.unet, setup.text_encoder
    rank, world = accelerator.process_index, accelerator.num_processes
    if world > 1:  # data parallel: the same LoRA initialisation, each process its own noise and batches
        torch.manual_seed(cfg.seed + rank)
    latent_cache = LatentCache(base, cfg.cache_dir if cfg.cache_latents_to_disk else None)
    text_cache: dict[str, tuple] = {}  # the frozen text encoders' outputs per caption
    noise_scheduler = base.noise_scheduler  # DDPM: the training noise
    num_train_timesteps = noise_scheduler.config.num_train_timesteps

    clock = {"validation": 0.0}  # seconds spent validating: its share of the run is reported

    def validate() -> float:
        started = time.perf_counter()
        try:
            return validation_loss(base, cfg, unet, text_encoder, val_set, latent_cache, text_cache)
        finally:
            clock["validation"] += time.perf_counter() - started

    # resume: the checkpoint of this dataset, config and base restores the weights, optimizer, scheduler,
    # RNGs, the history (replayed to the caller's log) and the per-epoch saves
    checkpoint = (Path(cfg.cache_dir) / "checkpoints" / safe_name(dataset.name, "The LoRA's name") / "last.pt"
                  if cfg.cache_dir else None)
    owner = checkpoint_owner(dataset, examples, cfg, base) if checkpoint else {}
    restored = setup.resume(checkpoint, rng, owner, dataset.name) if cfg.resume else None
    if restored:
        step, epochs_done = restored["step"], restored["epoch"]
        history, saved = restored["history"], restored["epoch_states"]
        for record in history[1:] if on_step else ():
            on_step(record)
    else:
        step, epochs_done = 0, 0
        history, saved = [{"step": 0, "val_loss": validate()}], {}

    pruned_in = ended_in = None  # the epoch a pruner / the early stop or the step budget ended it in
    best = BestWeights([r["val_loss"] for r in history if "val_loss" in r] if restored else [])
    if not restored:
        best.offer(history[0]["val_loss"], 0, setup)  # the untrained LoRA may turn out the best
    micro = 0  # micro-batches seen (gradient_accumulation_steps of them make a step)
    started = time.perf_counter()
    with tqdm(total=total_steps, initial=step, desc=f"train {dataset.name}", unit="step") as bar:
        for epoch in range(cfg.max_train_epochs):
            batches = bucket_batches(train_set, repeats, batch_size, order_rng)  # one bucket size a batch
            if world > 1:  # the same number of batches on every process (padded, as DistributedSampler)
                batches += batches[: -len(batches) % world]
            for batch in batches[rank::world]:
                micro += 1
                if micro <= step * cfg.gradient_accumulation_steps:
                    continue  # already trained before the resume
                with accelerator.accumulate(unet):
                    # the batch, kohya's draws in order from python's RNG: flips, then captions (tags shuffled
                    # after `keep_tokens`, caption dropout); the latents (cached) and loss masks (the alpha
                    # with `masked_loss`, else None) of the flipped images
                    flips = [settings.flip_aug and rng.random() < 0.5 for _ in batch]
                    captions = [
                        make_caption(e.caption, settings.shuffle_caption, settings.keep_tokens, dropout, rng)
                        for e in batch
                    ]
                    latents = torch.stack([
                        example_latents(latent_cache, example, flip, cfg.cache_latents)
                        for example, flip in zip(batch, flips, strict=True)
                    ])
                    masks = batch_masks(batch, flips, latents.device)
                    # noise, the noise offset (a per-channel constant: darker/brighter images) and timesteps,
                    # drawn from torch's CPU generator then moved: the same draws on every device, and a
                    # resume checkpoint's RNG state (the CPU's) continues them exactly on a GPU too
                    noise = torch.randn(latents.shape)
                    if cfg.noise_offset:
                        offset = torch.randn(latents.shape[0], latents.shape[1], 1, 1)
                        noise = noise + cfg.noise_offset * offset
                    timesteps = torch.randint(0, num_train_timesteps, (len(batch),))
                    noise, timesteps = noise.to(latents.device, latents.dtype), timesteps.to(latents.device)
                    # add noise (the forward diffusion), predict it from the noisy latents and the captions
                    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
                    text = encode_captions(base, text_encoder, captions, cfg, text_cache)
                    pred = predict_noise(unet, noisy, timesteps, text, size_conditions(batch, flips, "cpu"))
                    # loss: the per-example MSE weighted by the loss masks, min-SNR weighted, the batch's mean
                    loss = masked_mse(pred, noise, masks)
                    loss = min_snr_weighted(loss, timesteps, noise_scheduler, cfg.min_snr_gamma).mean()
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"Loss became {float(loss)} at step {step} of '{dataset.name}'; the last good "
                            f"checkpoint is {checkpoint or 'not kept (set cache_dir)'}"
                        )
                    # backward; clip once the accumulated gradients are applied; optimizer and scheduler step
                    # (accelerate applies them every `gradient_accumulation_steps` micro-batches)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.max_grad_norm:
                        accelerator.clip_grad_norm_(setup.trainable(), cfg.max_grad_norm)
                    setup.optimizer.step()
                    setup.scheduler.step()
                    setup.optimizer.zero_grad()
                if not accelerator.sync_gradients:
                    continue  # accumulating
                step += 1
                bar.update()
                # the record: the loss (the mean over processes: the same on each), the learning rate and,
                # every `validate_every_n_steps`, the validation loss
                loss = accelerator.reduce(loss.detach(), "mean")
                record = {"step": step, "loss": float(loss), "lr": float(setup.scheduler.get_last_lr()[0])}
                if every(cfg.validate_every_n_steps, step):
                    record["val_loss"] = validate()
                    best.offer(record["val_loss"], step, setup)
                history.append(record)
                if on_step:
                    on_step(record)
                if checkpoint and every(cfg.checkpoint_every_n_steps, step):
                    state = {"step": step, "epoch": epochs_done}
                    setup.save(checkpoint, rng, state, owner, history, saved)
                if should_stop and "val_loss" in record and should_stop(step, record["val_loss"]):
                    log.info("Stopped early at step %d (pruned)", step)
                    pruned_in = epoch + 1
                    break
                if "val_loss" in record and plateaued(
                    best.curve, cfg.early_stopping_patience, cfg.early_stopping_rel_tol
                ):
                    log.info("'%s' converged at step %d: validation loss best at step %s (%.4f)",
                             dataset.name, step, best.step, best.loss)
                    ended_in = epoch + 1
                    break
                if step >= total_steps:  # the step budget
                    ended_in = epoch + 1
                    break
            if pruned_in or ended_in:
                break
            epochs_done = epoch + 1
            # kohya's name-000002 …: a save every n epochs but the last (the LoRA itself); a resumed run keeps
            # the epoch's own saved state
            if every(cfg.save_every_n_epochs, epochs_done) and epochs_done < cfg.max_train_epochs \
                    and epochs_done not in saved:
                saved[epochs_done] = (lora_state(setup.unet_model), lora_state(setup.text_model))

    # the end: a pruned run as far as it went; a finished one with its final validation loss and per-epoch
    # saves, its resume checkpoint retired
    if pruned_in:
        epochs, extra = pruned_in, {"pruned": True}
    else:
        if cfg.early_stopping_patience and best.restore(setup):  # the LoRA of the best validation loss
            log.info("'%s': the LoRA of step %d (validation loss %.4f) is kept", dataset.name, best.step,
                     best.loss)
        final = validate()
        history.append({"step": step, "val_loss": final})
        epochs = ended_in or cfg.max_train_epochs
        share = clock["validation"] / max(time.perf_counter() - started, 1e-9)
        log.info("'%s': %d steps, validation %.0f%% of the training time", dataset.name, step, 100 * share)
        extra = {"final_val_loss": final, "epoch_states": saved, "best_step": best.step,
                 "validation_share": share}
        if cfg.checkpoint_every_n_steps and accelerator.is_main_process:
            retire_checkpoint(checkpoint)
    setup.release()
    # the file records the precision it trained in (fp16 asked for on a CPU ran in float32), not the one asked
    ran = dataclasses.replace(cfg, mixed_precision=str(accelerator.mixed_precision))
    return TrainResult(
        setup.unet_model, setup.text_model, pd.DataFrame(history), step, epochs, tag_frequency(examples), ran,
        settings, extra, bucket_histogram(examples, repeats),
    )

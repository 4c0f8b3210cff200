"""`pretrain`: the demo base's pretraining loop, resumable (see the package's docstring)."""

from __future__ import annotations

import logging
import multiprocessing
import time
from pathlib import Path

import torch
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from ..backends.clip_tokenizer import clip_tokenizer
from ..backends.sd_architecture import schedulers
from ..runtime import resolve_device
from .checkpoint import checkpoint_state, load_pretrain_checkpoint, save_pretrain_checkpoint
from .config import CONFIGS, WORK, learning_rate
from .judge import judge_base
from .report import save_base, write_report
from .steps import batch_of, build, unet_step, vae_step

log = logging.getLogger(__name__)


def pretrain(out: str | Path, steps: int | None = None, config: str = "demo", seed: int = 0,
             device: str = "auto", work: str | Path | None = None, checkpoint_every: int = 200,
             stop_after: int | None = None, workers: int = 0, judge_captions: int = 0) -> Path | None:
    """Train (or resume) and write the diffusers folder `out`, judged by the world probe on `judge_captions`
    held-out captions (0: not judged); `stop_after` ends early (as a killed run would, after its last
    checkpoint) and writes nothing but the checkpoint."""
    cfg = {**CONFIGS[config], **({"steps": steps} if steps else {})}
    out, work = Path(out), Path(work) if work else WORK / f"{config}-seed{seed}"
    target = resolve_device(device)
    models = tuple(m.to(target) for m in build(cfg, seed))
    unet, vae, text = models
    tokenizer, (noise_scheduler, sample_scheduler) = clip_tokenizer(), schedulers()
    optimizers = {"vae": torch.optim.AdamW(vae.parameters(), lr=cfg["vae_lr"], weight_decay=0.0),
                  "unet": torch.optim.AdamW([*unet.parameters(), *text.parameters()], lr=cfg["lr"])}
    # the base is the moving average of the U-Net stage's weights (its warm-up lets a short run's early,
    # poor weights fade fast; power 3/4 is diffusers' advice for runs far below a million steps)
    ema = EMAModel([*unet.parameters(), *text.parameters()], decay=cfg["ema_decay"], use_ema_warmup=True,
                   power=3 / 4)
    vae_steps = cfg["vae_steps"]
    step, losses, scaling = 0, [], 1.0
    checkpoint = work / "checkpoint.safetensors"
    if checkpoint.exists():
        step, losses, scaling = load_pretrain_checkpoint(checkpoint, models, optimizers, ema, cfg)
        log.info("Resuming the demo base pretraining at step %d of %d (%s)", step, cfg["steps"], checkpoint)
    vae.register_to_config(scaling_factor=scaling)
    first, last = step, min(cfg["steps"], stop_after or cfg["steps"])
    started, cpu = time.perf_counter(), time.process_time()
    bar = tqdm(range(step, last), initial=step, total=cfg["steps"], desc="pretrain demo base", unit="step")
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers else None
    for step in bar:
        tick = time.perf_counter()
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        images, captions = batch_of(seed, step, cfg, pool)
        images = images.to(target)
        if step < vae_steps:
            loss, opt = vae_step(vae, images, gen, cfg), optimizers["vae"]
        else:
            if step == vae_steps:  # the latents' scale, once, from the first denoising batch (SD: 0.18215)
                with torch.no_grad():
                    scaling = float(1 / vae.encode(images).latent_dist.mean.std())
                vae.register_to_config(scaling_factor=scaling)
            vae.requires_grad_(False)
            loss = unet_step(models, tokenizer, noise_scheduler, images, captions, gen, cfg)
            opt = optimizers["unet"]
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= vae_steps:
            ema.step([*unet.parameters(), *text.parameters()])
        stage, seconds = "vae" if step < vae_steps else "unet", round(time.perf_counter() - tick, 3)
        losses.append([step, stage, round(float(loss.detach()), 6), seconds])
        bar.set_postfix(stage=losses[-1][1], loss=f"{losses[-1][2]:.4f}")
        if (step + 1) % checkpoint_every == 0 or step + 1 == last:
            save_pretrain_checkpoint(
                checkpoint, *checkpoint_state(models, optimizers, ema, step + 1, losses, scaling, cfg)
            )
    bar.close()
    if pool:
        pool.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu  # cpu: all threads' seconds
    if last < cfg["steps"]:
        return None
    ema.copy_to([*unet.parameters(), *text.parameters()])
    facts = save_base(out, models, tokenizer, sample_scheduler, seed, cfg)
    run = dict(steps_this_run=last - first, seconds_this_run=round(seconds), cpu_seconds_this_run=round(cpu))
    write_report(out, losses, dict(config=config, seed=seed, device=str(target), **cfg, **run, **facts))
    if judge_captions:
        judge_base(out, judge_captions, cfg["sample_steps"], seed)
    return out

"""Pretrain the demo base (issue 14) on the pretraining world (`world.py`): the SD-shaped VAE, CLIP text
encoder and U-Net of `backends.diffusion` (its tokenizer and schedulers), wider than `tiny`, trained from
scratch. Stage 1 (the first `vae_steps`): the VAE learns to reconstruct world pictures. Stage 2: the U-Net
and the text encoder learn to denoise the frozen VAE's latents given the captions, at a constant learning
rate and then, over the last `decay_steps`, a cosine anneal to a tenth of it (the last steps of a diffusion
run sharpen its samples most; an annealed run is what an exponential moving average would approximate).

Deterministic from `--seed`: step k's pictures are world samples k*batch … (k+1)*batch-1 and its noise comes
from a generator seeded by (seed, k), so a run resumed from its checkpoint (`--work`, safetensors of the
weights and both optimizers) ends with the same weights as an uninterrupted one. A checkpoint that has not
started its anneal may be resumed with more `--steps` (train longer); that too equals an uninterrupted run.

python -m animation_lora.demo.pretrain --out DIR [--steps N] [--config demo|tiny] [--seed 0] [--device auto]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..backends.diffusion import DEMO_BASE, _schedulers, _tiny_modules, clip_tokenizer
from ..runtime import resolve_device
from .world import world_sample

log = logging.getLogger(__name__)

CONFIGS = {  # `demo`: the committed base (docs/demo_base.md); `tiny`: the tests'
    "demo": dict(size=64, batch=8, steps=9000, vae_steps=1000, decay_steps=3000, vae_widths=(16, 32, 64),
                 widths=(32, 64, 128), attention_levels=2, text_width=64, text_layers=2, vae_lr=1e-3, lr=4e-4,
                 kl=1e-6, dropout=0.1, sample_steps=20),
    "tiny": dict(size=32, batch=2, steps=4, vae_steps=2, decay_steps=1, vae_widths=(8, 16), widths=(16, 32),
                 attention_levels=1, text_width=16, text_layers=1, vae_lr=1e-3, lr=1e-3, kl=1e-6,
                 dropout=0.5, sample_steps=2),
}
WORK = Path("data/06_models/cache/demo_pretrain")


def build(config: dict, seed: int):
    """(unet, vae, text_encoder) with seeded initial weights (torch's global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        names = ("widths", "text_width", "text_layers", "vae_widths", "attention_levels", "size")
        unet, vae, text = _tiny_modules(*(config[n] for n in names))
    return unet.train(), vae.train(), text.train()


def batch_of(seed: int, step: int, config: dict, pool=None) -> tuple[torch.Tensor, list[str]]:
    """Step `step`'s pictures (B, 3, S, S) in [-1, 1] and their captions (drawn by `pool`'s processes)."""
    indices = range(step * config["batch"], (step + 1) * config["batch"])
    draw = functools.partial(world_sample, seed, size=config["size"])
    samples = pool.map(draw, indices) if pool else [draw(i) for i in indices]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 127.5 - 1
    return images, [s.caption for s in samples]


def vae_step(vae, images: torch.Tensor, gen: torch.Generator, config: dict) -> torch.Tensor:
    posterior = vae.encode(images).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(images.device)
    recon = vae.decode(z).sample
    kl = posterior.kl().mean() / z[0].numel()
    return F.mse_loss(recon, images) + 0.1 * F.l1_loss(recon, images) + config["kl"] * kl


def unet_step(models, tokenizer, noise_scheduler, images, captions, gen, config: dict) -> torch.Tensor:
    unet, vae, text = models
    device = images.device
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
    drop = torch.rand(len(captions), generator=gen) < config["dropout"]  # empty: classifier-free guidance
    captions = ["" if d else c for c, d in zip(captions, drop.tolist(), strict=True)]
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    noise = torch.randn(latents.shape, generator=gen).to(device)
    steps = noise_scheduler.config.num_train_timesteps
    t = torch.randint(0, steps, (len(captions),), generator=gen).to(device)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    pred = unet(noisy, t, text(ids)[0]).sample
    return F.mse_loss(pred, noise)


def learning_rate(step: int, config: dict) -> float:
    """The U-Net stage's rate: constant, then a cosine down to a tenth of it over the last `decay_steps`."""
    into = step - (config["steps"] - config["decay_steps"])
    if into < 0:
        return config["lr"]
    return config["lr"] * (0.1 + 0.45 * (1 + math.cos(math.pi * into / config["decay_steps"])))


def state(models, optimizers, step: int, losses: list, scaling: float, config: dict):
    """The checkpoint: weights, optimizer tensors (safetensors) and the rest as metadata (JSON strings)."""
    tensors, groups = {}, {}
    for name, module in zip(("unet", "vae", "text_encoder"), models, strict=True):
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for index, values in sd["state"].items():
            tensors.update({f"opt.{name}.{index}.{k}": v.detach().cpu() for k, v in values.items()})
    meta = dict(step=step, losses=losses, scaling=scaling, groups=groups, config=config)
    return tensors, {"pretrain": json.dumps(meta)}


def load_state(path: Path, models, optimizers, config: dict) -> tuple[int, list, float]:
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
    for name, module in zip(("unet", "vae", "text_encoder"), models, strict=True):
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
    return meta["step"], meta["losses"], meta["scaling"]


def save_checkpoint(path: Path, tensors: dict, metadata: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path) + ".tmp", metadata=metadata)
    os.replace(str(path) + ".tmp", path)  # a run killed while saving keeps the previous checkpoint


def pretrain(out: str | Path, steps: int | None = None, config: str = "demo", seed: int = 0,
             device: str = "auto", work: str | Path | None = None, checkpoint_every: int = 200,
             stop_after: int | None = None, workers: int = 0) -> Path | None:
    """Train (or resume) and write the diffusers folder `out`; `stop_after` ends early (as a killed run
    would, after its last checkpoint) and writes nothing but the checkpoint."""
    cfg = {**CONFIGS[config], **({"steps": steps} if steps else {})}
    out, work = Path(out), Path(work) if work else WORK / f"{config}-seed{seed}"
    target = resolve_device(device)
    models = tuple(m.to(target) for m in build(cfg, seed))
    unet, vae, text = models
    tokenizer, (noise_scheduler, sample_scheduler) = clip_tokenizer(), _schedulers()
    optimizers = {"vae": torch.optim.AdamW(vae.parameters(), lr=cfg["vae_lr"], weight_decay=0.0),
                  "unet": torch.optim.AdamW([*unet.parameters(), *text.parameters()], lr=cfg["lr"])}
    vae_steps = cfg["vae_steps"]
    step, losses, scaling = 0, [], 1.0
    checkpoint = work / "checkpoint.safetensors"
    if checkpoint.exists():
        step, losses, scaling = load_state(checkpoint, models, optimizers, cfg)
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
        stage, seconds = "vae" if step < vae_steps else "unet", round(time.perf_counter() - tick, 3)
        losses.append([step, stage, round(float(loss.detach()), 6), seconds])
        bar.set_postfix(stage=losses[-1][1], loss=f"{losses[-1][2]:.4f}")
        if (step + 1) % checkpoint_every == 0 or step + 1 == last:
            save_checkpoint(checkpoint, *state(models, optimizers, step + 1, losses, scaling, cfg))
    bar.close()
    if pool:
        pool.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu  # cpu: all threads' seconds
    if last < cfg["steps"]:
        return None
    save_base(out, models, tokenizer, sample_scheduler, seed, cfg)
    run = dict(steps_this_run=last - first, seconds_this_run=round(seconds), cpu_seconds_this_run=round(cpu))
    write_report(out, losses, dict(config=config, seed=seed, device=str(target), **cfg, **run))
    return out


def save_base(out: Path, models, tokenizer, scheduler, seed: int, config: dict) -> None:
    """The diffusers folder (vae/, text_encoder/, unet/, tokenizer/, scheduler/, model_index.json) and
    `pretrain_samples.png`: world pictures no run trains on beside what the base draws from their captions."""
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    from ..imaging import contact_sheet

    unet, vae, text = (m.eval().requires_grad_(False) for m in models)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    pipe.set_progress_bar_config(disable=True)
    size = config["size"]
    held_out = [world_sample(seed, 10**9 + i, size) for i in range(6)]  # far beyond any run's samples
    drawn = pipe([s.caption for s in held_out], num_inference_steps=config["sample_steps"], height=size,
                 width=size, output_type="np", generator=torch.Generator().manual_seed(seed)).images
    pictures = [p for s, d in zip(held_out, drawn, strict=True) for p in (s.image, np.uint8(d * 255))]
    labels = [t for s in held_out for t in (f"{s.framing} {s.action} {s.expression}".strip(), "base")]
    sheet = contact_sheet(pictures, labels, thumb=128, cols=4, title="world (left) and the base (right)")
    Image.fromarray(sheet).save(out / "pretrain_samples.png")


def write_report(out: Path, losses: list, facts: dict) -> None:
    """`pretrain_loss.csv`, `pretrain_loss.png` (per stage, with a running mean) and `pretrain.json`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.DataFrame(losses, columns=["step", "stage", "loss", "seconds"])
    table.to_csv(out / "pretrain_loss.csv", index=False)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, (stage, rows) in zip(axes, table.groupby("stage", sort=False), strict=False):
        ax.plot(rows.step, rows.loss, alpha=0.3, lw=0.7)
        ax.plot(rows.step, rows.loss.rolling(max(1, len(rows) // 50), min_periods=1).mean(), lw=1.5)
        ax.set(title=f"{stage} loss", xlabel="step", yscale="log")
    fig.tight_layout()
    fig.savefig(out / "pretrain_loss.png", dpi=90)
    plt.close(fig)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    (out / "pretrain.json").write_text(json.dumps({**facts, "folder_bytes": size}, indent=1))
    log.info("Demo base written to %s (%.1f MB)", out, size / 1e6)


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--out", default=str(DEMO_BASE), help="the diffusers folder to write")
    parser.add_argument("--steps", type=int, help="total steps (default: the configuration's)")
    parser.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda, mps")
    parser.add_argument("--work", help=f"checkpoint folder (default {WORK}/<config>-seed<seed>)")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0, help="processes drawing the world (GPU machines)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    options = dict(seed=args.seed, device=args.device, work=args.work, workers=args.workers)
    print(pretrain(args.out, args.steps, args.config, checkpoint_every=args.checkpoint_every, **options))


if __name__ == "__main__":
    main()

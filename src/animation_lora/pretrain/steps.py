"""What one pretraining step needs: the models (seeded), the step's world batch, and the two kinds of step,
the VAE's (reconstruction) and the U-Net's (denoising the frozen VAE's latents given the captions)."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..backends.sd_architecture import sd_modules
from ..demo.world import world_sample


def build(config: dict, seed: int):
    """(unet, vae, text_encoder) with seeded initial weights (torch's global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        names = ("widths", "text_width", "text_layers", "vae_widths", "attention_levels", "size")
        unet, vae, text = sd_modules(*(config[n] for n in names))
    return unet.train(), vae.train(), text.train()


def batch_of(seed: int, step: int, config: dict, pool=None) -> tuple[torch.Tensor, list[str]]:
    """Step `step`'s pictures (B, 3, S, S) in [-1, 1] and their captions (drawn by `pool`'s processes)."""
    indices = range(step * config["batch"], (step + 1) * config["batch"])
    draw = functools.partial(world_sample, seed, size=config["size"])
    samples = pool.map(draw, indices) if pool else [draw(i) for i in indices]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2).float() / 127.5 - 1
    return images, [s.caption for s in samples]


def image_gradients(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertical and horizontal differences of neighbouring pixels: where a cartoon's outlines are."""
    return images[..., 1:, :] - images[..., :-1, :], images[..., :, 1:] - images[..., :, :-1]


def vae_step(vae, images: torch.Tensor, gen: torch.Generator, config: dict) -> torch.Tensor:
    """The VAE's loss on the reconstruction of a posterior sample: MSE + L1, plus `edge` x the L1 of its
    image gradients (flat cartoon colours are easy; a plain pixel loss blurs the outlines between them),
    plus a small KL."""
    posterior = vae.encode(images).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(images.device)
    recon = vae.decode(z).sample
    kl = posterior.kl().mean() / z[0].numel()
    edges = sum(F.l1_loss(a, b) for a, b in zip(image_gradients(recon), image_gradients(images), strict=True))
    return F.mse_loss(recon, images) + F.l1_loss(recon, images) + config["edge"] * edges + config["kl"] * kl


def unet_step(models, tokenizer, noise_scheduler, images, captions, gen, config: dict) -> torch.Tensor:
    """The U-Net's (and text encoder's) loss: epsilon MSE on the frozen VAE's latents, each picture's
    weighted by min-SNR-gamma (Hang et al. 2023: the easy, low-noise timesteps stop dominating, so a small
    budget converges faster), a `dropout` share of captions emptied (classifier-free guidance)."""
    from diffusers.training_utils import compute_snr

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
    snr = compute_snr(noise_scheduler, t)
    weight = snr.clamp(max=config["min_snr_gamma"]) / snr  # epsilon-prediction form
    return (F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3)) * weight).mean()

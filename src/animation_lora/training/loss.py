"""The denoising loss: kohya's masked MSE (`masked_loss`), min-SNR weighting (`min_snr_gamma`), and the
validation loss on fixed timesteps and noise."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..backends.diffusion import BaseModel
from .config import TrainConfig
from .data import Example, LatentCache, batch_masks, example_latents, size_conditions
from .model import encode_captions, predict_noise

VALIDATION_TIMESTEPS = (100, 300, 500, 700, 900)
VALIDATION_BATCH = 32  # (example, timestep) pairs per U-Net pass


def masked_mse(pred: torch.Tensor, target: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    """The per-example MSE. With masks (pixel resolution, 0..1): downsampled to the latents by area and
    weighting each latent pixel, as sd-scripts' `apply_masked_loss`; then divided by the mask's mean (which
    sd-scripts does not), so the loss keeps the scale of an unmasked image and an all-ones mask changes
    nothing."""
    loss = F.mse_loss(pred.float(), target.float(), reduction="none")
    if masks is None:
        return loss.mean(dim=(1, 2, 3))
    weight = F.interpolate(masks.float(), size=loss.shape[2:], mode="area")
    return (loss * weight).mean(dim=(1, 2, 3)) / weight.mean(dim=(1, 2, 3)).clamp_min(1e-6)


def min_snr_weighted(loss: torch.Tensor, timesteps: torch.Tensor, noise_scheduler, gamma: float | None):
    """Per-example losses weighted by min(SNR, gamma) / SNR (Hang et al., diffusers' `compute_snr`); as they
    were without `gamma`."""
    if not gamma:
        return loss
    from diffusers.training_utils import compute_snr

    snr = compute_snr(noise_scheduler, timesteps)
    return loss * torch.clamp(snr, max=gamma) / snr


@torch.no_grad()
def validation_loss(
    base: BaseModel,
    cfg: TrainConfig,
    unet,
    text_encoder,
    examples: list[Example],
    latent_cache: LatentCache | None = None,
    text_cache: dict[str, tuple] | None = None,
) -> float:
    """The training loss of each example at fixed timesteps with fixed noise (unflipped, its caption as
    written): the same number for the same weights; NaN without a validation set. Examples of one latent
    size go through the U-Net together (`VALIDATION_BATCH` at a time): a validation costs a few steps'
    time, not one U-Net pass per example and timestep."""
    if not examples:
        return float("nan")
    latent_cache = LatentCache(base, None) if latent_cache is None else latent_cache
    text_cache = {} if text_cache is None else text_cache
    gen = torch.Generator().manual_seed(1234)  # on the CPU: the same noise on every device
    by_size: dict[tuple, list] = {}  # latent shape -> (example, latents, timestep, noise), drawn in order
    for ex in examples:
        latents = example_latents(latent_cache, ex, False, cfg.cache_latents)
        for t in VALIDATION_TIMESTEPS:
            noise = torch.randn(latents[None].shape, generator=gen)[0].to(latents.device, latents.dtype)
            by_size.setdefault(tuple(latents.shape), []).append((ex, latents, t, noise))
    losses = []
    for items in by_size.values():
        for start in range(0, len(items), VALIDATION_BATCH):
            chunk = items[start : start + VALIDATION_BATCH]
            latents = torch.stack([c[1] for c in chunk])
            noise = torch.stack([c[3] for c in chunk])
            timesteps = torch.tensor([c[2] for c in chunk], device=latents.device)
            masks = batch_masks([c[0] for c in chunk], [False] * len(chunk), base.vae.device)
            text = encode_captions(base, text_encoder, [c[0].caption for c in chunk], cfg, text_cache)
            sizes = size_conditions([c[0] for c in chunk], [False] * len(chunk), "cpu")
            noisy = base.noise_scheduler.add_noise(latents, noise, timesteps)
            pred = predict_noise(unet, noisy, timesteps, text, sizes)
            loss = masked_mse(pred, noise, masks)
            losses.extend(min_snr_weighted(loss, timesteps, base.noise_scheduler, cfg.min_snr_gamma).tolist())
    return float(np.mean(losses))

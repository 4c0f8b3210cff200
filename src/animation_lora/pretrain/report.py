"""What a finished pretraining writes: the diffusers folder with its samples beside held-out world pictures
(`save_base`), and the loss table, plot and facts (`write_report`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from ..demo.world import world_sample

log = logging.getLogger(__name__)


def reconstruction_psnr(vae, pictures: list[np.ndarray]) -> dict:
    """How sharp the VAE is: PSNR (dB, over all pixels) of `pictures` (uint8 RGB, one size) encoded to their
    latents' means and decoded, beside the same pictures shrunk to 16x16 and enlarged bilinearly (the
    thumbnail a VAE must beat to be worth its latents)."""
    from PIL import Image

    from ..metrics import psnr_from_mse

    originals = np.stack(pictures).astype(np.float32)
    x = torch.from_numpy(originals).permute(0, 3, 1, 2).to(vae.device) / 127.5 - 1
    with torch.no_grad():
        decoded = vae.decode(vae.encode(x).latent_dist.mean).sample
    decoded = ((decoded.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).cpu().numpy()
    size = originals.shape[2], originals.shape[1]
    thumbs = np.stack([np.asarray(Image.fromarray(p).resize((16, 16), Image.BILINEAR).resize(size,
                                                                                           Image.BILINEAR))
                       for p in pictures]).astype(np.float32)
    return {"psnr_db": round(psnr_from_mse(float(((decoded - originals) ** 2).mean())), 2),
            "thumbnail_16px_psnr_db": round(psnr_from_mse(float(((thumbs - originals) ** 2).mean())), 2),
            "pictures": len(pictures)}


def held_out_world(seed: int, size: int, count: int = 32) -> list[np.ndarray]:
    """World pictures far beyond any run's samples (indices from 10**9): what the VAE is measured on."""
    return [world_sample(seed, 10**9 + i, size).image for i in range(count)]


def save_base(out: Path, models, tokenizer, scheduler, seed: int, config: dict) -> dict:
    """The diffusers folder (vae/, text_encoder/, unet/, tokenizer/, scheduler/, model_index.json) and
    `pretrain_samples.png`: world pictures no run trains on beside what the base draws from their captions.
    Returns the VAE's reconstruction of 32 of those held-out pictures (`reconstruction_psnr`)."""
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
    return {"vae_world_reconstruction": reconstruction_psnr(vae, held_out_world(seed, size))}


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

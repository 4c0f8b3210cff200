"""Speed where users feel it: LoRA training and composition at SD-1.5 and SDXL scale (no Kedro needed).

Models built in code from diffusers' configs with random weights (speed does not depend on the weights):
SD 1.5 (U-Net 320/640/1280/1280 with cross-attention 768, VAE 128/256/512/512, CLIP text 12 x 768) and SDXL
(U-Net 320/640/1280 with 1/2/10 transformer layers and cross-attention 2048, the same VAE, CLIP-L 12 x 768 and
OpenCLIP-bigG 32 x 1280 with its projection: stabilityai/stable-diffusion-xl-base-1.0's configs).

- Training samples/s and peak memory, our trainer (`train_lora`: cached latents and text-encoder outputs,
  SDPA) against the named baseline: a loop doing per step what diffusers' `train_text_to_image_lora.py`
  (SD 1.5) or `train_text_to_image_lora_sdxl.py` (SDXL: both text encoders and the size/crop ids every step)
  does (DataLoader with resize, random crop and flip, VAE-encode and text-encode every batch,
  clip_grad_norm, AdamW).
- MFU: torch's FLOP counter over one training step of ours, divided by the GPU's peak (`--peak-tflops`).
- Composition latency per image: base, and 1 / 4 LoRAs under merge, fused, switch and composite.

    python bench/scale.py                  # GPU: SD 1.5 at 512 px, SDXL at 1024 px, rank 32, bf16
    python bench/scale.py --smoke          # CPU (default without CUDA): the tiny SD 1.5 and SDXL, 64 px
    python bench/scale.py --real-on-cpu    # CPU: the real architectures at 128 px, batch 1 (~14 GB for SDXL)
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F


def sd_vae(size: int, scaling_factor: float):
    """SD's VAE (SD 1.5 and SDXL share its shape): 128/256/512/512, 2 layers a level."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=size,
        scaling_factor=scaling_factor,
    )


def clip_text(width: int, layers: int, heads: int, act: str, projection: bool = False):
    """OpenAI CLIP ViT-L's text encoder (768, 12 layers, quick-GELU), or OpenCLIP bigG's with projection."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
                            num_attention_heads=heads, hidden_act=act, projection_dim=width)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def random_base(name: str, unet, vae, text, device: str, dtype: str, architecture: str = "sd_v1"):
    from animation_lora.backends.clip_tokenizer import clip_tokenizer
    from animation_lora.backends.diffusion import BaseModel
    from animation_lora.backends.sd_architecture import schedulers

    mods = [m.to(device, getattr(torch, dtype)).requires_grad_(False).eval() for m in (unet, vae, text)]
    second = clip_tokenizer() if architecture == "sdxl" else None
    return BaseModel(name, clip_tokenizer(), mods[2], mods[1], mods[0], *schedulers(), "random", architecture,
                     second)


def sd15_random(device: str, dtype: str):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, sample_size=64)
    text = clip_text(768, 12, 12, "quick_gelu")
    return random_base("sd15-random", unet, sd_vae(512, 0.18215), text, device, dtype)


def sdxl_random(device: str, dtype: str):
    from animation_lora.backends.diffusion import TextEncoderPair
    from animation_lora.backends.sd_architecture import sdxl_unet

    torch.manual_seed(0)
    unet = sdxl_unet((320, 640, 1280), (1, 2, 10), (5, 10, 20), (768, 1280), 1280, 256, 128)
    text = TextEncoderPair(clip_text(768, 12, 12, "quick_gelu"),
                           clip_text(1280, 32, 20, "gelu", projection=True))
    return random_base("sdxl-random", unet, sd_vae(1024, 0.13025), text, device, dtype, "sdxl")


def dataset(n: int, size: int):
    from animation_lora.lora_dataset import build_lora_dataset

    rng = np.random.default_rng(0)
    images = {f"i{k}": rng.integers(0, 255, (size + size // 8, size, 3), dtype=np.uint8) for k in range(n)}
    captions = {k: f"marco, 3d animated character, pose {i}" for i, k in enumerate(images)}
    # the predefined buckets: ours trains on size x size crops, as the baseline (no-upscale would round)
    params = {"target_size": n, "resolution": size, "batch_size": 1, "bucket_no_upscale": False}
    return build_lora_dataset(
        "marco", "marco", images, captions, {k: 1.0 for k in images}, None, params
    ), images


def peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's, so far


def reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def ours(base, data, size, batch, rank, precision, steps) -> tuple[float, float]:
    from animation_lora.training import TrainConfig, train_lora

    cfg = TrainConfig.from_params(
        dict(
            network_dim=rank,
            network_alpha=rank,
            resolution=size,
            train_batch_size=batch,
            max_train_epochs=1,
            validation_split=0.0,
            validate_every_n_steps=0,
            mixed_precision=precision,
            cache_latents_to_disk=False,
        )
    )
    stamps = []
    reset_peak(base.device)
    train_lora(
        base,
        data,
        cfg,
        on_step=lambda r: (
            torch.cuda.synchronize() if base.device.type == "cuda" else None,
            stamps.append(time.perf_counter()),
        ),
    )
    timed = stamps[1 : steps + 1]  # the first step warms up (latent and text caches, kernels)
    return batch * (len(timed) - 1) / (timed[-1] - timed[0]), peak_memory_mb(base.device)


def baseline(base, images, size, batch, rank, precision, steps) -> tuple[float, float]:
    """Per step what diffusers' train_text_to_image_lora.py does."""
    from peft import LoraConfig
    from torchvision import transforms

    from animation_lora.backends.factory import shared_copy
    from animation_lora.training import UNET_TARGETS
    from animation_lora.training.model import encode_text, predict_noise

    device, wdtype = base.device, base.dtype
    resize, crop = transforms.Resize(size), transforms.RandomCrop(size)
    tf = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize([0.5], [0.5])])

    def item(image):  # as the SDXL script: the original size and the random crop's corner go to the time ids
        picture = resize(transforms.functional.to_pil_image(image))
        top, left, h, w = crop.get_params(picture, (size, size))
        sizes = torch.tensor([image.shape[0], image.shape[1], top, left, size, size], dtype=torch.float32)
        return tf(transforms.functional.crop(picture, top, left, h, w)), sizes, "marco, 3d animated character"

    items = [item(im) for im in images.values()]
    loader = torch.utils.data.DataLoader(items * 100, batch_size=batch, shuffle=True, drop_last=True)
    unet = shared_copy(base.unet)
    unet.add_adapter(
        LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=UNET_TARGETS)
    )
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    opt = torch.optim.AdamW(params, lr=1e-4)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    reset_peak(device)
    stamps = []
    for i, (pixels, sizes, captions) in enumerate(loader):
        if i > steps:
            break
        with torch.no_grad():
            latents = (
                base.vae.encode(pixels.to(device, wdtype)).latent_dist.sample()
                * base.vae.config.scaling_factor
            )
            text = encode_text(base, base.text_encoder, list(captions), 1)  # SDXL: both encoders, pooled
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (latents.shape[0],), device=device)
        with amp:
            pred = predict_noise(unet, base.noise_scheduler.add_noise(latents, noise, t), t, text, sizes)
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    timed = stamps[1:]
    return batch * (len(timed) - 1) / (timed[-1] - timed[0]), peak_memory_mb(device)


def step_flops(base, size, batch, rank) -> float:
    """FLOPs of one LoRA training step of the U-Net (forward + backward), torch's FLOP counter."""
    from peft import LoraConfig
    from torch.utils.flop_counter import FlopCounterMode

    from animation_lora.backends.factory import shared_copy
    from animation_lora.training import UNET_TARGETS
    from animation_lora.training.model import encode_text, predict_noise

    unet = shared_copy(base.unet)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=UNET_TARGETS))
    lat = torch.randn(batch, 4, size // 8, size // 8, device=base.device, dtype=base.dtype)
    with torch.no_grad():
        text = encode_text(base, base.text_encoder, ["marco"] * batch, 1)
    sizes = torch.tensor([[size, size, 0, 0, size, size]] * batch, dtype=torch.float32)
    with FlopCounterMode(display=False) as counter:
        t = torch.tensor([500] * batch, device=base.device)
        predict_noise(unet, lat, t, text, sizes).float().mean().backward()
    return float(counter.get_total_flops())


def composition(base, size, steps, loras_per_case=(1, 4)) -> dict[str, float]:
    from animation_lora.composition.composer import Composer
    from animation_lora.composition.parameters import Sampling
    from animation_lora.composition.prompts import Request
    from animation_lora.lora_format import LoraFile, to_kohya
    from animation_lora.training import TrainConfig
    from animation_lora.training.model import add_lora

    unet, _ = add_lora(base, TrainConfig.from_params({"network_dim": 4, "network_alpha": 4}))
    lora = LoraFile(to_kohya(unet, None, 4.0, "float", base.architecture), {})
    settings = Sampling(steps=steps, guidance_scale=7.5, width=size, height=size, switch_every=5)
    out = {}
    for n in loras_per_case:
        names = [f"l{k}" for k in range(n)]
        request = Request("marco", dict.fromkeys(names, 0.8))
        strategies = ["base", "merge", "fused", "switch", "composite"]
        with Composer(base, dict.fromkeys(names, lora)) as composer:  # a fusion lasts until the next strategy
            for strategy in strategies if n == loras_per_case[0] else strategies[1:]:
                warm = dataclasses.replace(settings, steps=2)
                composer.generate(strategy, request, warm, 0)  # warm-up (and the fuse)
                start = time.perf_counter()
                composer.generate(strategy, request, settings, 0)
                if base.device.type == "cuda":
                    torch.cuda.synchronize()
                out[strategy if strategy == "base" else f"{n} LoRA {strategy}"] = time.perf_counter() - start
    return out


def bench(base, size, batches, rank, precision, steps, sample_steps, gpu, peak_tflops) -> None:
    """The training rows (ours against the diffusers-example baseline) and the composition rows of a base."""
    print(f"{base.name} ({base.architecture}): {size} px, rank {rank}, mixed precision {precision}, "
          f"{steps} timed steps")
    for batch in batches:
        data, images = dataset(max(8, batch * (steps + 2)), size)
        b_rate, b_mem = baseline(base, images, size, batch, rank, precision, steps)
        o_rate, o_mem = ours(base, data, size, batch, rank, precision, steps)
        flops = step_flops(base, size, batch, rank)
        mfu = f"{o_rate / batch * flops / (peak_tflops * 1e12):.1%}" if gpu else "n/a (CPU)"
        print(
            f"  batch {batch}: ours {o_rate:.2f} samples/s, diffusers-example baseline {b_rate:.2f} -> "
            f"{o_rate / b_rate:.2f}x; peak memory {o_mem:.0f} vs {b_mem:.0f} MB ({o_mem / b_mem:.2f}x"
            f"{'' if gpu else ', process RSS so far'}); {flops / batch / 1e12:.3f} TFLOP/sample; MFU {mfu}"
        )
    latency = composition(base, size, sample_steps)
    for name, seconds in latency.items():
        print(f"  compose {name}: {seconds:.3f} s/image ({seconds / latency['base']:.2f}x base)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the tiny models, 64 px (default without CUDA)")
    parser.add_argument("--real-on-cpu", action="store_true", help="the real architectures, 128 px, on CPU")
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak (H100: 989)"
    )
    parser.add_argument("--steps", type=int, default=0, help="timed training steps (default 20 GPU, 3 CPU)")
    parser.add_argument("--arch", choices=("sd15", "sdxl", "both"), default="both")
    ns = parser.parse_args()
    from animation_lora.backends.diffusion import tiny, tiny_sdxl

    gpu = torch.cuda.is_available() and not ns.smoke and not ns.real_on_cpu
    steps = ns.steps or (20 if gpu else 3)
    print(f"device {torch.cuda.get_device_name() if gpu else 'cpu'}, torch {torch.__version__}")
    if gpu:  # each architecture at its own resolution, as users train them
        runs = {"sd15": lambda: (sd15_random("cuda", "bfloat16"), 512, (1, 4, 8), 32, "bf16", 30),
                "sdxl": lambda: (sdxl_random("cuda", "bfloat16"), 1024, (1, 2, 4), 32, "bf16", 30)}
    elif ns.real_on_cpu:
        runs = {"sd15": lambda: (sd15_random("cpu", "float32"), 128, (1,), 4, "no", 2),
                "sdxl": lambda: (sdxl_random("cpu", "float32"), 128, (1,), 4, "no", 2)}
    else:
        runs = {"sd15": lambda: (tiny(seed=0, device="cpu"), 64, (1,), 4, "no", 3),
                "sdxl": lambda: (tiny_sdxl(seed=0, device="cpu"), 64, (1,), 4, "no", 3)}
    for arch, make in runs.items():
        if ns.arch in (arch, "both"):
            base, size, batches, rank, precision, sample_steps = make()
            bench(base, size, batches, rank, precision, steps, sample_steps, gpu, ns.peak_tflops)
            del base
            if gpu:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()

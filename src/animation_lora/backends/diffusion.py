"""The Stable Diffusion base model that LoRAs are trained on and composed with.

- ``tiny`` (embedded): an SD-1.5-shaped pipeline (`sd_architecture`: UNet2DConditionModel, AutoencoderKL,
  CLIPTextModel, DDPM and DDIM schedulers) with small widths, built in code, deterministic from a seed
  (torch's global RNG is left as it was), with OpenAI CLIP's tokenizer built offline (`clip_tokenizer`).
- ``sd15`` (studio): a diffusers folder, or a single-file ``.safetensors`` checkpoint, loaded offline
  (`diffusion.sd15.path`; a single file also needs the LDM `original_config` yaml beside it or given).
- ``demo``: the demo base pretrained on the pretraining world (`python -m animation_lora.pretrain`;
  docs/demo_base.md): a diffusers folder loaded offline (`diffusion.demo.path`).
- ``sdxl`` (studio): SDXL from a diffusers folder, or a single-file checkpoint with a local diffusers config
  folder (`diffusion.sdxl.path` / `.config`), loaded offline. Its two text encoders are one module
  (`TextEncoderPair`), so training, saving, resuming and composing treat them as SD 1.5's one encoder.
- ``tiny_sdxl`` (embedded): an SDXL-shaped pipeline at small widths, built in code like ``tiny``.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..runtime import dtype_on, resolve_device
from .clip_tokenizer import clip_tokenizer
from .factory import backend_factory
from .ldm_text import text_encoder_from_single_file
from .sd_architecture import schedulers, sd_modules, sdxl_modules
from .weights import checkpoint_path

SD_V1, SDXL = "sd_v1", "sdxl"  # the architectures (kohya's base-model families)


class TextEncoderPair(torch.nn.Module):
    """SDXL's two text encoders as one module: `te1` (CLIP ViT-L) and `te2` (OpenCLIP bigG, with the
    projection that gives the pooled embedding). LoRA layers, `shared_copy`, state dicts (keys `te1.…`,
    `te2.…`) and devices work on the pair as on SD 1.5's one encoder."""

    def __init__(self, te1, te2):
        super().__init__()
        self.te1, self.te2 = te1, te2

    @property
    def device(self) -> torch.device:
        return self.te1.device


@dataclass
class BaseModel:
    name: str
    tokenizer: Any
    text_encoder: Any  # SDXL: a TextEncoderPair
    vae: Any
    unet: Any
    noise_scheduler: Any  # DDPM: training noise
    sample_scheduler: Any  # DDIM: inference
    model_hash: str  # identifies the base in the LoRA's metadata (ss_sd_model_hash)
    architecture: str = SD_V1
    tokenizer_2: Any = None  # SDXL: OpenCLIP bigG's tokenizer

    @property
    def is_sdxl(self) -> bool:
        return self.architecture == SDXL

    @property
    def device(self) -> torch.device:
        """Where the base runs (`device` of its backend parameters); training and composition follow it."""
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the frozen weights (`dtype` of its backend parameters)."""
        return self.unet.dtype

    def pipeline(self, unet=None, text_encoder=None):
        """A sampling pipeline of this base, or of LoRA-adapted copies of its U-Net and text encoder(s)."""
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        text_encoder = self.text_encoder if text_encoder is None else text_encoder
        if self.is_sdxl:
            return StableDiffusionXLPipeline(
                vae=self.vae, text_encoder=text_encoder.te1, text_encoder_2=text_encoder.te2,
                tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2,
                unet=self.unet if unet is None else unet,
                scheduler=self.sample_scheduler, add_watermarker=False,
            )
        return StableDiffusionPipeline(
            vae=self.vae,
            text_encoder=text_encoder,
            tokenizer=self.tokenizer,
            unet=self.unet if unet is None else unet,
            scheduler=self.sample_scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )


_FULL_PRECISION_VAES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def working_vae(vae):
    """The VAE to encode and decode with: the VAE itself, or for a float16 VAE that asks for it
    (`force_upcast`: SDXL's overflows to NaN in float16; kohya's `--no_half_vae`) a float32 copy, made once
    per VAE, so the shared model is never cast."""
    if vae.dtype != torch.float16 or not vae.config.force_upcast:
        return vae
    if vae not in _FULL_PRECISION_VAES:
        import copy

        _FULL_PRECISION_VAES[vae] = copy.deepcopy(vae).float()
    return _FULL_PRECISION_VAES[vae]


def _state_hash(*modules) -> str:
    """The base's identity by content (issue 25: a fine-tune swapped in at the same path is another base):
    SHA-256 of every weight of the modules, in key order. It keys the latent cache (the VAE's weights are in
    it) and the resume checkpoints, and is the LoRA's `ss_sd_model_hash`."""
    h = hashlib.sha256()
    for m in modules:
        for k, v in sorted(m.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())  # any dtype
    return h.hexdigest()[:16]


def tiny(
    seed: int = 0,
    widths: tuple[int, ...] = (32, 64),
    text_width: int = 32,
    text_layers: int = 2,
    device: str = "auto",
    dtype: str = "float32",
) -> BaseModel:
    """An SD-1.5-shaped model small enough to train on 2 CPU cores; same seed, same weights (built on the CPU
    in float32, then moved to `device` in `dtype`: the same weights on every device)."""
    with torch.random.fork_rng(devices=[]):  # seeded construction; the caller's global RNG is left as it was
        torch.manual_seed(seed)
        unet, vae, text_encoder = sd_modules(widths, text_width, text_layers)
    model_hash = _state_hash(unet, text_encoder, vae)
    unet, vae, text_encoder = _placed((unet, vae, text_encoder), device, dtype, "diffusion.tiny.dtype")
    return BaseModel(f"tiny-seed{seed}", clip_tokenizer(), text_encoder, vae, unet, *schedulers(), model_hash)


def tiny_sdxl(
    seed: int = 0,
    widths: tuple[int, int, int] = (32, 64, 64),
    text_widths: tuple[int, int] = (32, 32),
    text_layers: int = 2,
    device: str = "auto",
    dtype: str = "float32",
) -> BaseModel:
    """An SDXL-shaped model (`sdxl_modules`: SDXL's U-Net layout, two text encoders, the pooled embedding
    and size conditioning) small enough for the fast tests; same seed, same weights. Both encoders use
    OpenAI CLIP's tokenizer (SDXL's second one differs only in its padding token)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, vae, te1, te2 = sdxl_modules(widths, text_widths, text_layers)
    text_encoder = TextEncoderPair(te1, te2)
    model_hash = _state_hash(unet, text_encoder, vae)
    unet, vae, text_encoder = _placed((unet, vae, text_encoder), device, dtype, "diffusion.tiny_sdxl.dtype")
    return BaseModel(f"tiny-sdxl-seed{seed}", clip_tokenizer(), text_encoder, vae, unet, *schedulers(),
                     model_hash, SDXL, clip_tokenizer())


def _placed(modules, device: str, dtype: str, parameter: str) -> list:
    """Modules built on the CPU in float32, moved to `device` in `dtype` and frozen: the same weights on every
    device."""
    target = resolve_device(device)
    torch_dtype = dtype_on(target, dtype, parameter)
    cast = {} if torch_dtype == torch.float32 else {"dtype": torch_dtype}  # diffusers warns on any cast
    return [m.to(target, **cast).requires_grad_(False) for m in modules]


def sd15(
    path: str | None, original_config: str | None = None, dtype: str = "float32", device: str = "auto"
) -> BaseModel:
    """SD 1.5 from a diffusers folder or one `.safetensors` file, never fetching anything, on `device` in
    `dtype` (float16/bfloat16 halve the memory of the frozen weights; LoRA weights still train in float32)."""
    from diffusers import StableDiffusionPipeline

    source = checkpoint_path(path, "diffusion.sd15.path")
    target = resolve_device(device)
    torch_dtype = dtype_on(target, dtype, "diffusion.sd15.dtype")
    if source.is_dir():
        pipe = _from_folder(source, torch_dtype)
    else:
        config = Path(original_config) if original_config else source.with_suffix(".yaml")
        config = checkpoint_path(str(config), "diffusion.sd15.original_config")
        # diffusers would fetch the CLIP text config and tokenizer from the hub: build both here instead
        pipe = StableDiffusionPipeline.from_single_file(
            str(source),
            original_config=str(config),
            local_files_only=True,
            torch_dtype=torch_dtype,
            text_encoder=text_encoder_from_single_file(source).to(torch_dtype),
            tokenizer=clip_tokenizer(),
            safety_checker=None,
            requires_safety_checker=False,
        )
    pipe.to(target)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)  # shared and frozen: trainers add LoRA layers on a `shared_copy`
    noise, sample = schedulers()
    return BaseModel(f"sd15:{source.name}", pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet, noise,
                     sample, _state_hash(pipe.unet, pipe.text_encoder, pipe.vae))


def _from_folder(source: Path, torch_dtype: torch.dtype):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(
        source, local_files_only=True, torch_dtype=torch_dtype, safety_checker=None,
        requires_safety_checker=False
    )


DEMO_BASE = Path(__file__).parents[1] / "demo" / "base"  # made by `python -m animation_lora.pretrain`


def demo(path: str | None = None, device: str = "auto", dtype: str = "float32") -> BaseModel:
    """The demo base pretrained on the pretraining world (docs/demo_base.md): a diffusers folder,
    `diffusion.demo.path` (null: the one in the package, `animation_lora/demo/base/`), loaded offline."""
    source = Path(path) if path else DEMO_BASE
    if not (source / "model_index.json").is_file():
        raise FileNotFoundError(
            f"Demo base not found: parameter `diffusion.demo.path` is '{path}' ({source} has no "
            f"model_index.json); make it with `python -m animation_lora.pretrain --out {source}`"
        )
    target = resolve_device(device)
    pipe = _from_folder(source, dtype_on(target, dtype, "diffusion.demo.dtype")).to(target)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
    noise, sample = schedulers()
    model_hash = _state_hash(pipe.unet, pipe.text_encoder, pipe.vae)
    return BaseModel(f"demo:{source.name}", pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet, noise,
                     sample, model_hash)


def sdxl(path: str | None, config: str | None = None, dtype: str = "float32",
         device: str = "auto") -> BaseModel:
    """SDXL from a diffusers folder, or from one `.safetensors` checkpoint (sgm layout, as
    `sd_xl_base_1.0.safetensors` comes) with `config`: a local diffusers folder of SDXL's configs and
    tokenizers (model_index.json, */config.json, tokenizer*/; no weights needed), so nothing is fetched.
    On `device` in `dtype` (float16/bfloat16: the frozen weights; LoRA weights train in float32)."""
    from diffusers import StableDiffusionXLPipeline

    source = checkpoint_path(path, "diffusion.sdxl.path")
    torch_dtype = dtype_on(resolve_device(device), dtype, "diffusion.sdxl.dtype")
    common = dict(local_files_only=True, torch_dtype=torch_dtype, add_watermarker=False)
    if source.is_dir():
        pipe = StableDiffusionXLPipeline.from_pretrained(source, **common)
    else:
        if not config:
            raise ValueError(
                f"'{source}' is a single file: set `diffusion.sdxl.config` to a local diffusers folder of "
                f"SDXL's configs and tokenizers (nothing is fetched from a hub)"
            )
        folder = checkpoint_path(config, "diffusion.sdxl.config")
        pipe = StableDiffusionXLPipeline.from_single_file(str(source), config=str(folder), **common)
    pipe.to(resolve_device(device))
    text_encoder = TextEncoderPair(pipe.text_encoder, pipe.text_encoder_2)
    for module in (pipe.unet, pipe.vae, text_encoder):
        module.requires_grad_(False)
    return BaseModel(f"sdxl:{source.name}", pipe.tokenizer, text_encoder, pipe.vae, pipe.unet, *schedulers(),
                     _state_hash(pipe.unet, text_encoder, pipe.vae), SDXL, pipe.tokenizer_2)


# Built once per process; trainers copy what they change (LoRA layers are added to copies).
make_base_model = backend_factory(
    "diffusion", {"tiny": tiny, "tiny_sdxl": tiny_sdxl, "sd15": sd15, "sdxl": sdxl, "demo": demo}
)

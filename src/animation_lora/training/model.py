"""Model surgery for training: peft LoRA layers on `shared_copy`s of the shared base model (the frozen weights
are not copied), the speed knobs (xformers, gradient checkpointing, channels-last), the check that
`network_dim` fits, text encoding with kohya's clip_skip (cached while the text encoder is frozen), the
optimizer named by `optimizer_type`, and the accelerator on the base's device."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from ..backends.diffusion import BaseModel
from ..backends.factory import shared_copy
from ..runtime import enable_tf32
from .config import TrainConfig

log = logging.getLogger(__name__)

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


def add_lora(base: BaseModel, cfg: TrainConfig) -> tuple[Any, Any]:
    """The U-Net (and text encoder when it trains) with LoRA layers, as `shared_copy`s of the base's: the
    frozen weights are the shared model's own tensors (in the base's dtype, on its device), never written;
    the LoRA weights are float32 (diffusers' `cast_training_params`) so fp16/bf16 training updates them
    through accelerate's autocast and grad scaler. The shared base stays bit-identical."""
    from peft import LoraConfig, inject_adapter_in_model

    unet = shared_copy(base.unet)
    unet.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=cfg.network_dim,
            lora_alpha=cfg.network_alpha,
            init_lora_weights="gaussian",
            target_modules=UNET_TARGETS,
        )
    )
    text_encoder = base.text_encoder
    if cfg.text_encoder_lr > 0:
        text_encoder = shared_copy(base.text_encoder)
        text_encoder.requires_grad_(False)
        # transformers 5's own add_adapter wants peft >= 0.22; peft's injection works with 0.21
        config = LoraConfig(
            r=cfg.network_dim,
            lora_alpha=cfg.network_alpha,
            init_lora_weights="gaussian",
            target_modules=TEXT_TARGETS,
        )
        inject_adapter_in_model(config, text_encoder)
    for module in (unet, text_encoder):
        for p in module.parameters():
            if p.requires_grad:
                p.data = p.data.float()  # the LoRA weights only (peft made them in the base's dtype)
    speed_knobs(unet, cfg)
    return unet, text_encoder


def speed_knobs(unet, cfg: TrainConfig) -> None:
    """kohya's `--xformers` (else diffusers' default, PyTorch SDPA), `--gradient_checkpointing`, channels-last
    (a layout change of the conv weights: their values stay the same)."""
    if cfg.xformers:
        import importlib.util

        if importlib.util.find_spec("xformers") is None:
            raise ImportError("xformers: true needs the 'xformers' package: pip install xformers")
        unet.enable_xformers_memory_efficient_attention()
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        unet.train()  # diffusers checkpoints only in training mode (SD has no dropout: same numbers)
    if cfg.channels_last:
        unet.to(memory_format=torch.channels_last)


def check_network_dim(base: BaseModel, cfg: TrainConfig) -> None:
    smallest = min(
        min(m.in_features, m.out_features)
        for n, m in base.unet.named_modules()
        if isinstance(m, torch.nn.Linear) and any(n.endswith(t) for t in UNET_TARGETS)
    )
    if cfg.network_dim > smallest:
        raise ValueError(
            f"network_dim {cfg.network_dim} is larger than the smallest targeted layer ({smallest})"
        )


def encode_text(base: BaseModel, text_encoder, captions: list[str], clip_skip: int) -> torch.Tensor:
    ids = base.tokenizer(
        captions,
        padding="max_length",
        max_length=base.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(text_encoder.device)
    out = text_encoder(ids, output_hidden_states=clip_skip > 1)
    if clip_skip > 1:  # kohya: the hidden state clip_skip layers from the end, through the final norm
        model = text_encoder.text_model if hasattr(text_encoder, "text_model") else text_encoder
        return model.final_layer_norm(out.hidden_states[-clip_skip])
    return out.last_hidden_state


def encode_captions(
    base: BaseModel, text_encoder, captions: list[str], cfg: TrainConfig, cache: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The captions' text embeddings: encoded each time while the text encoder trains (or with
    `cache_text_encoder_outputs` off), else each caption once into `cache` (the frozen encoder's outputs)."""
    if cfg.text_encoder_lr > 0 or not cfg.cache_text_encoder_outputs:
        with torch.set_grad_enabled(cfg.text_encoder_lr > 0):
            return encode_text(base, text_encoder, captions, cfg.clip_skip)
    missing = [c for c in dict.fromkeys(captions) if c not in cache]
    if missing:
        with torch.no_grad():
            encoded = encode_text(base, text_encoder, missing, cfg.clip_skip)
        cache.update(zip(missing, encoded, strict=True))
    return torch.stack([cache[c] for c in captions])


def parameter_groups(cfg: TrainConfig, unet, text_encoder) -> list[dict]:
    """The trainable LoRA weights: the U-Net's at `learning_rate`, the text encoder's at `text_encoder_lr`."""

    def trainable(module) -> list:
        return [p for p in module.parameters() if p.requires_grad]

    groups = [{"params": trainable(unet), "lr": cfg.learning_rate}]
    if cfg.text_encoder_lr > 0:
        groups.append({"params": trainable(text_encoder), "lr": cfg.text_encoder_lr})
    return groups


def make_optimizer(cfg: TrainConfig, groups: list[dict]):
    name = cfg.optimizer_type
    if name == "AdamW":
        return torch.optim.AdamW(groups, weight_decay=1e-2)
    if name == "SGD":
        return torch.optim.SGD(groups, momentum=0.9)
    if name == "Adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, scale_parameter=False, relative_step=False, warmup_init=False)
    modules = {
        "AdamW8bit": ("bitsandbytes", "bitsandbytes.optim", "AdamW8bit"),
        "Lion": ("lion-pytorch", "lion_pytorch", "Lion"),
        "Prodigy": ("prodigyopt", "prodigyopt", "Prodigy"),
    }
    package, module, cls = modules[name]
    try:
        return getattr(__import__(module, fromlist=[cls]), cls)(groups)
    except ImportError as err:
        raise ImportError(
            f"optimizer_type '{name}' needs the '{package}' package: pip install {package}"
        ) from err


def make_accelerator(base: BaseModel, cfg: TrainConfig):
    """accelerate on the base's device (one process, or one per GPU under `accelerate launch`), with
    `mixed_precision` (fp16 only on CUDA: its grad scaler; bf16 also on the CPU)."""
    from accelerate import Accelerator

    device = base.device
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # accelerate trains on the current CUDA device
    precision = cfg.mixed_precision
    if precision == "fp16" and device.type != "cuda":
        log.warning("mixed_precision fp16 needs a CUDA GPU; training in float32 on %s", device)
        precision = "no"
    from accelerate.state import AcceleratorState

    shared = AcceleratorState._shared_state  # a process-wide singleton: a trial may change the precision
    if shared and shared.get("_mixed_precision") != precision and os.environ.get("WORLD_SIZE", "1") == "1":
        AcceleratorState._reset_state()
    accelerator = Accelerator(
        mixed_precision=precision,
        cpu=device.type == "cpu",
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
    )
    if accelerator.device.type != device.type or (device.index or 0) != (accelerator.device.index or 0):
        raise ValueError(
            f"The base model is on {device} but accelerate trains on {accelerator.device}: set the diffusion "
            f"backend's device (runtime.device in conf/base/globals.yml) to auto under `accelerate launch`"
        )
    if cfg.allow_tf32 and enable_tf32():
        log.info("TF32 matmuls enabled (Ampere or newer)")
    return accelerator

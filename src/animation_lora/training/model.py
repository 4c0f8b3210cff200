"""Model surgery for training: peft LoRA layers on `shared_copy`s of the shared base model (the frozen weights
are not copied), the speed knobs (xformers, gradient checkpointing, channels-last), the check that
`network_dim` fits, text encoding with kohya's clip_skip (cached while the text encoder is frozen), the
optimizer named by `optimizer_type`, and the accelerator on the base's device."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from ..backends.diffusion import BaseModel, TextEncoderPair
from ..backends.factory import shared_copy
from ..runtime import enable_tf32
from .config import TrainConfig

log = logging.getLogger(__name__)
TextConditioning = tuple[torch.Tensor, "torch.Tensor | None"]  # (hidden states, SDXL's pooled embedding)

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
    if cfg.trains_text_encoder:
        text_encoder = shared_copy(base.text_encoder)
        text_encoder.requires_grad_(False)
        # transformers 5's own add_adapter wants peft >= 0.22; peft's injection works with 0.21
        config = LoraConfig(
            r=cfg.network_dim,
            lora_alpha=cfg.network_alpha,
            init_lora_weights="gaussian",
            target_modules=TEXT_TARGETS,
        )
        encoders = text_encoders(text_encoder)
        for encoder, rate in zip(encoders, cfg.text_encoder_lrs(len(encoders)), strict=True):
            if rate > 0:  # SDXL: an encoder at rate 0 gets no LoRA layers (nothing of it in the file)
                inject_adapter_in_model(config, encoder)
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


def text_encoders(text_encoder) -> list:
    """The encoders inside a base's text encoder: SDXL's pair, or SD 1.5's one."""
    if isinstance(text_encoder, TextEncoderPair):
        return [text_encoder.te1, text_encoder.te2]
    return [text_encoder]


def token_ids(tokenizer, captions: list[str], device) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids.to(device)


def encode_text(base: BaseModel, text_encoder, captions: list[str], clip_skip: int) -> TextConditioning:
    """(hidden states, pooled embedding or None). SD 1.x: the last hidden state, or with kohya's clip_skip
    the one clip_skip layers from the end through the final norm. SDXL (as sd-scripts and diffusers): both
    encoders' penultimate hidden states side by side, the pooled embedding from the second's projection
    (clip_skip does not apply)."""
    if base.is_sdxl:
        hidden = []
        for tokenizer, encoder in ((base.tokenizer, text_encoder.te1), (base.tokenizer_2, text_encoder.te2)):
            out = encoder(token_ids(tokenizer, captions, encoder.device), output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
        return torch.cat(hidden, dim=-1), out.text_embeds
    ids = token_ids(base.tokenizer, captions, text_encoder.device)
    out = text_encoder(ids, output_hidden_states=clip_skip > 1)
    if clip_skip > 1:  # kohya: the hidden state clip_skip layers from the end, through the final norm
        model = text_encoder.text_model if hasattr(text_encoder, "text_model") else text_encoder
        return model.final_layer_norm(out.hidden_states[-clip_skip]), None
    return out.last_hidden_state, None


def encode_captions(base: BaseModel, text_encoder, captions: list[str], cfg: TrainConfig,
                    cache: dict[str, tuple]) -> TextConditioning:
    """The captions' text conditioning: encoded each time while a text encoder trains (or with
    `cache_text_encoder_outputs` off), else each caption once into `cache` (the frozen encoders' outputs)."""
    if cfg.trains_text_encoder or not cfg.cache_text_encoder_outputs:
        with torch.set_grad_enabled(cfg.trains_text_encoder):
            return encode_text(base, text_encoder, captions, cfg.clip_skip)
    missing = [c for c in dict.fromkeys(captions) if c not in cache]
    if missing:
        with torch.no_grad():
            hidden, pooled = encode_text(base, text_encoder, missing, cfg.clip_skip)
        cache.update((c, (hidden[i], None if pooled is None else pooled[i])) for i, c in enumerate(missing))
    hidden = torch.stack([cache[c][0] for c in captions])
    return hidden, None if cache[captions[0]][1] is None else torch.stack([cache[c][1] for c in captions])


def predict_noise(unet, noisy: torch.Tensor, timesteps: torch.Tensor, text: TextConditioning,
                  sizes: torch.Tensor) -> torch.Tensor:
    """The U-Net's noise prediction; SDXL's also takes the pooled text embedding and each picture's
    size/crop conditioning (`data.size_conditions`)."""
    hidden, pooled = text
    if pooled is None:
        return unet(noisy, timesteps, hidden).sample
    added = {"text_embeds": pooled, "time_ids": sizes.to(noisy.device, hidden.dtype)}
    return unet(noisy, timesteps, hidden, added_cond_kwargs=added).sample


def parameter_groups(cfg: TrainConfig, unet, text_encoder) -> list[dict]:
    """The trainable LoRA weights: the U-Net's at `learning_rate`, each text encoder's at its
    `text_encoder_lr`."""

    def trainable(module) -> list:
        return [p for p in module.parameters() if p.requires_grad]

    groups = [{"params": trainable(unet), "lr": cfg.learning_rate}]
    if cfg.trains_text_encoder:
        encoders = text_encoders(text_encoder)
        for encoder, rate in zip(encoders, cfg.text_encoder_lrs(len(encoders)), strict=True):
            if rate > 0:
                groups.append({"params": trainable(encoder), "lr": rate})
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

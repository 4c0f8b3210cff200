"""LoRA files in kohya's format (what A1111, ComfyUI, sd-scripts and diffusers load): per module
`<name>.lora_down.weight` [r, in], `<name>.lora_up.weight` [out, r], `<name>.alpha` (float scalar), where
<name> is the module path with '.' -> '_' under `lora_unet_` or `lora_te_` (SDXL: `lora_te1_`, `lora_te2_`).
The text encoders are named in the transformers-4 layout (`lora_te_text_model_encoder_layers_…`) that those
tools expect, even though transformers 5's CLIPTextModel no longer has the `text_model.` level. SD 1.x U-Net
modules keep diffusers' paths (sd-scripts' SD 1 U-Net uses them); SDXL's take the original sgm layout's
(`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`), as sd-scripts' SDXL U-Net names them.

This module owns kohya's names: module keys (`kohya_name`, for export and for `module_names`), the `ss_*` and
`modelspec.*` metadata (`describe`), and the file's tensors and metadata (`LoraFile`)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .backends.diffusion import BaseModel
    from .lora_dataset import TrainingSet
    from .training import TrainResult

from .backends.diffusion import SD_V1, SDXL
from .ldm_layout import unet_key

PRECISIONS = {"float": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# The four LoRA types, each a training namespace and a composition slot (the brief's weights 1.0/0.8/0.7/0.6)
LORA_TYPES = ("character", "background", "pose", "expression")
SKIPPED = "animation_lora.skipped"  # metadata of a LoRA that was not trained: why


def text_model_path(path: str) -> str:
    """A text-encoder module path in the transformers-4 layout (under `text_model.`)."""
    return path if path.startswith("text_model.") else "text_model." + path


def kohya_name(prefix: str, path: str) -> str:
    """kohya's name of the module at `path` (dots become underscores) under `lora_unet_` or `lora_te_`."""
    return prefix + path.replace(".", "_")


def unet_path(path: str, architecture: str) -> str:
    """kohya's path of a U-Net module: diffusers' for SD 1.x, the sgm layout's for SDXL (3 levels of 2
    layers, cross-attention on levels 1 and 2)."""
    return unet_key(path + ".weight", 2, 3, {1, 2})[: -len(".weight")] if architecture == SDXL else path


def text_prefix(path: str, architecture: str) -> tuple[str, str]:
    """(kohya's prefix, the path inside that encoder) of a text-encoder module; SDXL's pair (`te1.…`,
    `te2.…`) goes to `lora_te1_` / `lora_te2_`."""
    if architecture == SDXL:
        encoder, inner = path.split(".", 1)
        return f"lora_{encoder}_", inner
    return "lora_te_", path


def _targetable(model) -> list[str]:
    return [p for p, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def module_names(base: BaseModel) -> set[str]:
    """Every LoRA-targetable module (Linear, Conv2d) of the base, in kohya's naming; the text encoders'
    under both spellings (as the model names them, and in the transformers-4 layout)."""
    architecture = getattr(base, "architecture", SD_V1)
    names = {kohya_name("lora_unet_", unet_path(p, architecture)) for p in _targetable(base.unet)}
    for path in _targetable(base.text_encoder):
        prefix, inner = text_prefix(path, architecture)
        names |= {kohya_name(prefix, inner), kohya_name(prefix, text_model_path(inner))}
    return names


def _modules(module, te: bool, alpha: float, dtype, architecture: str) -> dict[str, torch.Tensor]:
    out = {}
    state = module.state_dict() if hasattr(module, "state_dict") else module  # a module or its LoRA state
    for key, value in state.items():
        m = re.match(r"(.+)\.lora_([AB])(?:\.default)?\.weight$", key)
        if not m:
            continue
        path = m.group(1).replace("base_model.model.", "")
        if te:
            prefix, inner = text_prefix(path, architecture)
            name = kohya_name(prefix, text_model_path(inner))
        else:
            name = kohya_name("lora_unet_", unet_path(path, architecture))
        direction = "down" if m.group(2) == "A" else "up"
        out[f"{name}.lora_{direction}.weight"] = value.detach().to(dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return out


def to_kohya(
    unet,
    text_encoder=None,
    alpha: float = 1.0,
    save_precision: str = "float",
    architecture: str = SD_V1,
) -> dict[str, torch.Tensor]:
    """The LoRA layers of a peft-adapted U-Net (and text encoder(s)), or of their saved LoRA states, as a
    kohya state dict for `architecture` (the base's: `sd_v1` or `sdxl`)."""
    if save_precision not in PRECISIONS:
        raise ValueError(f"Unknown save_precision '{save_precision}'; choose {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[save_precision]
    tensors = _modules(unet, False, alpha, dtype, architecture)
    if text_encoder is not None:
        tensors.update(_modules(text_encoder, True, alpha, dtype, architecture))
    if not tensors:
        raise ValueError("No LoRA layers found to export")
    return tensors


class LoraFile:
    """A LoRA as written to disk: kohya tensors and string metadata (ss_*, modelspec.*)."""

    def __init__(self, tensors: dict[str, torch.Tensor], metadata: dict[str, str]):
        self.tensors, self.metadata = tensors, {k: str(v) for k, v in metadata.items()}

    @classmethod
    def not_trained(cls, name: str, reason: str) -> LoraFile:
        """No weights: the dataset had nothing to teach (`lora_dataset.nothing_to_teach`)."""
        return cls({}, {"ss_output_name": name, SKIPPED: reason})

    @property
    def skipped(self) -> str:
        """Why this LoRA holds no weights; '' for a trained one."""
        return self.metadata.get(SKIPPED, "")

    @property
    def trigger(self) -> str:
        return self.metadata.get("modelspec.trigger_phrase", "")

    def modules(self, prefix: str = "") -> list[str]:
        return sorted({k.split(".")[0] for k in self.tensors if k.startswith(prefix)})


# what kohya and the model spec call each architecture: (ss_base_model_version, modelspec.architecture)
ARCHITECTURE_NAMES = {SD_V1: ("sd_v1", "stable-diffusion-v1/lora"),
                      SDXL: ("sdxl_base_v1-0", "stable-diffusion-xl-v1-base/lora")}


def architecture_of(lora: LoraFile) -> str:
    """The base a LoRA file is for ('sd_v1', 'sdxl'), from its metadata, else from its module names."""
    version = lora.metadata.get("ss_base_model_version", "")
    if version.startswith("sdxl") or any(k.startswith(("lora_te1_", "lora_te2_")) or "_input_blocks_" in k
                                         for k in lora.tensors):
        return SDXL
    return SD_V1


def bucket_info(buckets: dict[tuple[int, int], int]) -> str:
    """kohya's `ss_bucket_info`: {"buckets": {i: {"resolution": [w, h], "count": n}}, "mean_img_ar_error"}
    (the error is 0: every picture is cropped to its bucket's aspect ratio)."""
    return json.dumps({"buckets": {str(i): {"resolution": list(size), "count": n}
                                   for i, (size, n) in enumerate(sorted(buckets.items()))},
                       "mean_img_ar_error": 0.0})


def describe(result: TrainResult, dataset: TrainingSet, base: BaseModel) -> dict[str, str]:
    """kohya's ss_* metadata (strings) plus modelspec.* for the exported file."""
    cfg, settings = result.config, result.settings
    version, spec = ARCHITECTURE_NAMES[base.architecture]
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(cfg.network_dim),
        "ss_network_alpha": str(float(cfg.network_alpha)),
        "ss_learning_rate": str(cfg.learning_rate),
        "ss_unet_lr": str(cfg.learning_rate),
        "ss_text_encoder_lr": str(cfg.text_encoder_lr),
        "ss_num_epochs": str(result.epochs),
        "ss_epoch": str(result.epochs),
        "ss_max_train_steps": str(result.steps),
        "ss_steps": str(result.steps),
        "ss_optimizer": cfg.optimizer_type,
        "ss_lr_scheduler": cfg.lr_scheduler,
        "ss_seed": str(cfg.seed),
        "ss_clip_skip": str(cfg.clip_skip),
        "ss_min_snr_gamma": str(cfg.min_snr_gamma),
        "ss_noise_offset": str(cfg.noise_offset),
        "ss_mixed_precision": cfg.mixed_precision,
        "ss_save_precision": cfg.save_precision,
        "ss_gradient_accumulation_steps": str(cfg.gradient_accumulation_steps),
        "ss_tag_frequency": json.dumps({dataset.name: result.tag_frequency}),
        "ss_dataset_dirs": json.dumps(
            {dataset.name: {"n_repeats": result.settings.num_repeats, "img_count": len(dataset.images)}}
        ),
        "ss_sd_model_name": base.name,
        "ss_sd_model_hash": base.model_hash,
        "sshs_model_hash": base.model_hash,
        "ss_base_model_version": version,
        "ss_v2": "False",
        "ss_resolution": str((result.resolution, result.resolution)),
        "ss_enable_bucket": "True",
        "ss_min_bucket_reso": str(settings.min_bucket_reso),
        "ss_max_bucket_reso": str(settings.max_bucket_reso),
        "ss_bucket_no_upscale": str(settings.bucket_no_upscale),
        "ss_bucket_info": bucket_info(result.buckets),
        "ss_output_name": dataset.name,
        "modelspec.architecture": spec,
        "modelspec.resolution": f"{result.resolution}x{result.resolution}",
        "modelspec.implementation": "diffusers",
        "modelspec.title": dataset.name,
        "modelspec.trigger_phrase": dataset.trigger,
    }

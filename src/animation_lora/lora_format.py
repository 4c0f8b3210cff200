"""LoRA files in kohya's format (what A1111, ComfyUI, sd-scripts and diffusers load): per module
`<name>.lora_down.weight` [r, in], `<name>.lora_up.weight` [out, r], `<name>.alpha` (float scalar), where
<name> is the module path with '.' -> '_' under `lora_unet_` or `lora_te_`. The text encoder is named in the
transformers-4 layout (`lora_te_text_model_encoder_layers_…`) that those tools expect, even though
transformers 5's CLIPTextModel no longer has the `text_model.` level.

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


def module_names(base: BaseModel) -> set[str]:
    """Every LoRA-targetable module (Linear, Conv2d) of the base, in kohya's naming; the text encoder's under
    both spellings (as the model names it, and in the transformers-4 layout)."""
    names = set()
    for prefix, model in (("lora_unet_", base.unet), ("lora_te_", base.text_encoder)):
        for path, module in model.named_modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                names.add(kohya_name(prefix, path))
                if prefix == "lora_te_":
                    names.add(kohya_name(prefix, text_model_path(path)))
    return names


def _modules(module, prefix: str, te: bool, alpha: float, dtype) -> dict[str, torch.Tensor]:
    out = {}
    state = module.state_dict() if hasattr(module, "state_dict") else module  # a module or its LoRA state
    for key, value in state.items():
        m = re.match(r"(.+)\.lora_([AB])(?:\.default)?\.weight$", key)
        if not m:
            continue
        path = m.group(1).replace("base_model.model.", "")
        name = kohya_name(prefix, text_model_path(path) if te else path)
        direction = "down" if m.group(2) == "A" else "up"
        out[f"{name}.lora_{direction}.weight"] = value.detach().to(dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return out


def to_kohya(
    unet,
    text_encoder=None,
    alpha: float = 1.0,
    save_precision: str = "float",
) -> dict[str, torch.Tensor]:
    """The LoRA layers of a peft-adapted U-Net (and text encoder), or of their saved LoRA states, as a kohya
    state dict."""
    if save_precision not in PRECISIONS:
        raise ValueError(f"Unknown save_precision '{save_precision}'; choose {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[save_precision]
    tensors = _modules(unet, "lora_unet_", False, alpha, dtype)
    if text_encoder is not None:
        tensors.update(_modules(text_encoder, "lora_te_", True, alpha, dtype))
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


def describe(result: TrainResult, dataset: TrainingSet, base: BaseModel) -> dict[str, str]:
    """kohya's ss_* metadata (strings) plus modelspec.* for the exported file."""
    cfg = result.config
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
        "ss_base_model_version": "sd_v1",
        "ss_v2": "False",
        "ss_output_name": dataset.name,
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": dataset.name,
        "modelspec.trigger_phrase": dataset.trigger,
    }

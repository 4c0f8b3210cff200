"""LoRA files in kohya's format (what A1111, ComfyUI, sd-scripts and diffusers load): per module
`<name>.lora_down.weight` [r, in], `<name>.lora_up.weight` [out, r], `<name>.alpha` (float scalar), where
<name> is the module path with '.' -> '_' under `lora_unet_` or `lora_te_`. The text encoder is named in the
transformers-4 layout (`lora_te_text_model_encoder_layers_…`) that those tools expect, even though
transformers 5's CLIPTextModel no longer has the `text_model.` level."""

from __future__ import annotations

import re

import torch

PRECISIONS = {"float": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _modules(module, prefix: str, te: bool, alpha: float, dtype) -> dict[str, torch.Tensor]:
    out = {}
    state = module.state_dict() if hasattr(module, "state_dict") else module  # a module or its LoRA state
    for key, value in state.items():
        m = re.match(r"(.+)\.lora_([AB])(?:\.default)?\.weight$", key)
        if not m:
            continue
        path = m.group(1).replace("base_model.model.", "")
        if te and not path.startswith("text_model."):
            path = "text_model." + path
        name = prefix + path.replace(".", "_")
        out[f"{name}.lora_{'down' if m.group(2) == 'A' else 'up'}.weight"] = value.detach().to(dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return out


def to_kohya(unet, text_encoder=None, alpha: float = 1.0, save_precision: str = "float") -> dict[str, torch.Tensor]:
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

    @property
    def trigger(self) -> str:
        return self.metadata.get("modelspec.trigger_phrase", "")

    def modules(self, prefix: str = "") -> list[str]:
        return sorted({k.split(".")[0] for k in self.tensors if k.startswith(prefix)})

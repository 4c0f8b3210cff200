"""Where models run and in which precision: one setting (`runtime` in conf/base/globals.yml, interpolated
into every model backend's `device` and the trainer's `mixed_precision`), resolved here.

- `device`: `auto` → CUDA when present (under `accelerate launch`, this process's GPU, `cuda:$LOCAL_RANK`),
  else Apple's MPS, else the CPU; or any torch device name (`cpu`, `cuda`, `cuda:1`, `mps`).
- `mixed_precision` (accelerate's names): `no` | `fp16` | `bf16`; `weight_dtype` is the dtype frozen weights
  are kept in (diffusers' `train_text_to_image_lora.py`: fp16/bf16 under mixed precision, else fp32)."""

from __future__ import annotations

import logging
import os

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PRECISIONS = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """A torch device from a setting; `auto` (or None) picks the best one present. An unavailable device is an
    error naming it, never a silent fallback."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"Unknown device '{name}'; use auto, cpu, cuda, cuda:<index> or mps") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{name}' asked for, but torch sees no CUDA GPU (use auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device '{name}': only {torch.cuda.device_count()} CUDA GPU(s) present")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device '{name}' asked for, but MPS is not available")
    return device


def device_name(name: str | None = "auto") -> str:
    """`resolve_device` as a string, for libraries that take device names (SAM2, open_clip, TorchScript)."""
    return str(resolve_device(name))


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """`float32` | `float16` | `bfloat16` (or a torch dtype) → the torch dtype; else an error naming them."""
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"Unknown dtype '{name}'; choose one of {', '.join(DTYPES)}")
    return DTYPES[name]


def dtype_on(device: torch.device, name: str | torch.dtype, parameter: str) -> torch.dtype:
    """`resolve_dtype`, but float16 on the CPU becomes float32 with a warning naming `parameter`: CPUs lack
    most half-precision kernels (measured: a VAE encode at 512 px 56x slower), so a studio setting made for a
    GPU still runs, at full precision, on a machine without one."""
    dtype = resolve_dtype(name)
    if dtype == torch.float16 and device.type == "cpu":
        logging.getLogger(__name__).warning(
            "`%s` is float16, but the device is the CPU (no GPU found or asked for): float32 there", parameter
        )
        return torch.float32
    return dtype


def weight_dtype(mixed_precision: str) -> torch.dtype:
    """The dtype frozen modules are kept in under accelerate's `mixed_precision` (`no` → float32)."""
    if mixed_precision not in PRECISIONS:
        choices = ", ".join(PRECISIONS)
        raise ValueError(f"Unknown mixed_precision '{mixed_precision}'; choose one of {choices}")
    return PRECISIONS[mixed_precision]


def enable_tf32() -> bool:
    """TF32 matmuls and convolutions on Ampere and newer (as kohya and diffusers do); True if enabled."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True

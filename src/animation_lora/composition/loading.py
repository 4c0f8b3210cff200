"""Loading LoRA files into a base for composition: the check that a file fits the base's architecture, and
quiet loading (transformers' and diffusers' warnings that do not apply)."""

from __future__ import annotations

from contextlib import contextmanager

from ..lora_format import LoraFile, module_names


def check_compatible(lora: LoraFile, base, source: str, known: set[str] | None = None) -> None:
    """A LoRA for another architecture (e.g. SDXL on SD 1.5) is an error naming the file and the first module
    the base does not have."""
    known = known if known is not None else module_names(base)
    kohya = [k for k in lora.modules() if k.startswith(("lora_unet_", "lora_te"))]
    if not kohya:
        return  # diffusers/peft layout: diffusers validates it when loading
    for module in kohya:
        if module not in known:
            raise ValueError(
                f"LoRA '{source}' does not fit the base model '{base.name}': module '{module}' "
                f"has no counterpart (a LoRA for another architecture?)"
            )


@contextmanager
def quiet_transformers():
    """transformers 5 prints a "LOAD REPORT" listing a text-encoder LoRA's keys as MISSING while diffusers
    loads them correctly (the export round-trips exactly, tests/test_lora_training.py), and diffusers warns
    "No LoRA keys associated to CLIPTextModel" for every U-Net-only LoRA (kohya's SDXL default): hush both
    here."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as hf_logging

    levels = hf_logging.get_verbosity(), diffusers_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(levels[0])
        diffusers_logging.set_verbosity(levels[1])

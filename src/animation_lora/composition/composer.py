"""Compose several LoRAs on one base model (diffusers + peft).

Strategies:
- ``base``: no LoRA; ``solo``: one LoRA alone at its weight (for comparison).
- ``merge``: every LoRA as a peft adapter, ``set_adapters(names, weights)`` (the method the original brief
  asks for).
- ``fused``: the same weights fused into the base weights (``fuse_lora``): the fast path.
- ``switch`` (LoRA Switch, Zhong et al. 2024): one adapter active at a time, rotated every k denoising steps.
- ``composite`` (LoRA Composite, same paper): at each step the classifier-free-guided noise prediction is
  averaged over one U-Net pass per LoRA.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import get_args

import numpy as np
import torch

from ..backends.factory import private_copy
from ..lora_format import LoraFile, module_names
from .parameters import Sampling, Strategy
from .prompts import Request

STRATEGIES = get_args(Strategy)


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
    loads them correctly (the export round-trips exactly, tests/test_lora_training.py): hush it here."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


class Composer:
    """A base pipeline with N LoRAs loaded as named adapters."""

    def __init__(self, base, loras: dict[str, LoraFile], sources: dict[str, str] | None = None):
        known = module_names(base)
        # adapters go into private copies (fused weights are written): the cached base is shared (contract:
        # backends/factory.py). The copies stay on the base's device, in its dtype.
        self.base = dataclasses.replace(
            base, unet=private_copy(base.unet), text_encoder=private_copy(base.text_encoder)
        )
        self.pipe = self.base.pipeline()
        self.pipe.set_progress_bar_config(disable=True)
        self.names = list(loras)
        self._fused: tuple | None = None  # (adapters, weights) fused into the base weights right now
        for name, lora in loras.items():
            source = (sources or {}).get(name, name)
            check_compatible(lora, base, source, known)
            tensors = {k: v.clone() for k, v in lora.tensors.items()}
            try:
                with quiet_transformers():
                    self.pipe.load_lora_weights(tensors, adapter_name=name)
            except (RuntimeError, ValueError, KeyError, TypeError) as err:  # shape mismatch, bad layout
                raise ValueError(f"LoRA '{source}' cannot be loaded into '{base.name}': {err}") from err

    @contextmanager
    def adapters(self, weights: dict[str, float]):
        active = [n for n, w in weights.items() if w != 0]
        if active:
            self.pipe.enable_lora()
            self.pipe.set_adapters(active, [weights[n] for n in active])
        else:
            self.pipe.disable_lora()
        try:
            yield active
        finally:
            self.pipe.enable_lora()

    def use_scheduler(self, name: str) -> None:
        """Sampling scheduler: ddim (default), euler, euler_a, dpm (DPM-Solver++), from the base's config."""
        from diffusers import (
            DDIMScheduler,
            DPMSolverMultistepScheduler,
            EulerAncestralDiscreteScheduler,
            EulerDiscreteScheduler,
        )

        kinds = {
            "ddim": DDIMScheduler,
            "euler": EulerDiscreteScheduler,
            "euler_a": EulerAncestralDiscreteScheduler,
            "dpm": DPMSolverMultistepScheduler,
        }
        if name not in kinds:
            raise ValueError(f"Unknown scheduler '{name}'; choose one of {', '.join(kinds)}")
        self.pipe.scheduler = kinds[name].from_config(self.base.sample_scheduler.config)

    def _call(self, prompt: str, settings: Sampling, seed: int, **extra) -> np.ndarray:
        return self.pipe(
            prompt,
            negative_prompt=settings.negative_prompt or None,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance_scale,
            height=settings.height,
            width=settings.width,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            **extra,
        ).images[0]

    def generate(self, strategy: str, request: Request, settings: Sampling, seed: int) -> np.ndarray:
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
        weights = {n: request.weights.get(n, 0.0) for n in self.names}
        if strategy == "base":
            weights = dict.fromkeys(self.names, 0.0)
        if strategy == "fused":
            return self._fused_call(request.prompt, weights, settings, seed)
        self._unfuse()
        if strategy in ("base", "merge", "solo"):
            with self.adapters(weights):
                return self._call(request.prompt, settings, seed)
        active = [n for n in self.names if weights[n] != 0]
        if strategy == "switch":
            return self._switch(request.prompt, active, weights, settings, seed)
        return self._composite(request.prompt, active, weights, settings, seed)

    def _unfuse(self) -> None:
        if self._fused is not None:
            self.pipe.unfuse_lora()
            self._fused = None

    def _fused_call(self, prompt, weights, settings, seed) -> np.ndarray:
        """Fuse once per weight setting, then every image of that setting costs a plain U-Net pass per
        step (merged peft layers skip their adapter branch)."""
        active = tuple(n for n in self.names if weights[n] != 0)
        key = (active, tuple(weights[n] for n in active))
        if self._fused != key:
            self._unfuse()
            if active:
                self.pipe.enable_lora()
                self.pipe.set_adapters(list(active), [weights[n] for n in active])
                self.pipe.fuse_lora(adapter_names=list(active), lora_scale=1.0)
                self._fused = key
        if not active:
            with self.adapters(weights):
                return self._call(prompt, settings, seed)
        return self._call(prompt, settings, seed)

    def _switch(self, prompt, active, weights, settings, seed) -> np.ndarray:
        """One LoRA at a time, the next one every `switch_every` steps (callback_on_step_end)."""
        if len(active) <= 1:
            with self.adapters(weights):
                return self._call(prompt, settings, seed)
        every = settings.switch_every
        self.pipe.set_adapters([active[0]], [weights[active[0]]])

        def rotate(pipe, step, timestep, kwargs):
            nxt = active[((step + 1) // every) % len(active)]
            pipe.set_adapters([nxt], [weights[nxt]])
            return kwargs

        try:
            return self._call(prompt, settings, seed, callback_on_step_end=rotate)
        finally:
            self.pipe.enable_lora()

    @torch.no_grad()
    def _composite(self, prompt, active, weights, settings, seed) -> np.ndarray:
        """Average over the LoRAs of each LoRA's guided noise prediction, step by step."""
        if len(active) <= 1:
            with self.adapters(weights):
                return self._call(prompt, settings, seed)
        pipe, guidance, device = self.pipe, settings.guidance_scale, self.base.device
        embeds = {}
        for name in active:  # each LoRA may also change the text encoder
            with self.adapters({name: weights[name]}):
                cond, uncond = pipe.encode_prompt(prompt, device, 1, True, settings.negative_prompt or None)
                embeds[name] = torch.cat([uncond, cond])
        scheduler = pipe.scheduler
        scheduler.set_timesteps(settings.steps)
        generator = torch.Generator().manual_seed(seed)  # on the CPU, as in `_call`: same noise on any device
        latents = pipe.prepare_latents(
            1,
            pipe.unet.config.in_channels,
            settings.height,
            settings.width,
            embeds[active[0]].dtype,
            device,
            generator,
        )
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            guided = []
            for name in active:
                with self.adapters({name: weights[name]}):
                    uncond, cond = pipe.unet(model_in, t, encoder_hidden_states=embeds[name]).sample.chunk(2)
                guided.append(uncond + guidance * (cond - uncond))
            latents = scheduler.step(torch.stack(guided).mean(0), t, latents).prev_sample
        image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        return ((image[0].permute(1, 2, 0).float().clamp(-1, 1) + 1) / 2).cpu().numpy()

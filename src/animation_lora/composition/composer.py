"""Compose several LoRAs on one base model (diffusers + peft).

Strategies:
- ``base``: no LoRA; ``solo``: one LoRA alone at its weight (for comparison).
- ``merge``: every LoRA as a peft adapter, ``set_adapters(names, weights)`` (the method the original brief
  asks for).
- ``fused``: the same weights fused into the base weights (``fuse_lora``): the fast path.
- ``switch`` (LoRA Switch, Zhong et al. 2024): one adapter active at a time, rotated every k denoising steps.
- ``composite`` (LoRA Composite, same paper): at each step the classifier-free-guided noise prediction is
  averaged over one U-Net pass per LoRA.
- ``regional`` (Mix-of-Show's regional sampling, A1111's Regional Prompter): the character's LoRAs and words
  act in its region, the others outside; one U-Net pass per region, blended with the region mask.

The composer shares the base's weights (no second U-Net in memory): its adapters live in `shared_copy`s of the
base's U-Net and text encoder. Only ``fused`` writes those weights, under the base's `weights_lock`; the exact
bits it overwrites wait in a temporary file (`KeptWeights`) and are put back when the composer unfuses — after
each call, or, inside `with Composer(...)`, when the weights change, another strategy runs or the block ends
(an exception too).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import get_args

import numpy as np
import torch
import torch.nn.functional as F

from ..backends.diffusion import working_vae
from ..backends.factory import shared_copy, weights_lock
from ..lora_format import LoraFile, module_names
from .kept_weights import KeptWeights
from .loading import check_compatible, quiet_transformers
from .parameters import Sampling, Strategy
from .prompts import Request
from .regions import Regions

STRATEGIES = get_args(Strategy)


class Composer:
    """A base pipeline with N LoRAs loaded as named adapters, sharing the base's weights; use it as a context
    manager (`with Composer(base, loras) as composer:`) so fused weights stay fused between images."""

    def __init__(self, base, loras: dict[str, LoraFile], sources: dict[str, str] | None = None,
                 regions: Regions | None = None):
        known = module_names(base)
        self.regions = regions  # the `regional` strategy's layout
        # adapters go into shared copies: new module trees around the base's own weight tensors (contract:
        # backends/factory.py); `fused` writes those tensors under the lock and puts them back
        self.lock = weights_lock(base.unet)
        self.base = dataclasses.replace(
            base, unet=shared_copy(base.unet), text_encoder=shared_copy(base.text_encoder)
        )
        self.pipe = self.base.pipeline()
        self.pipe.set_progress_bar_config(disable=True)
        self.vae_scale = 2 ** (len(self.pipe.vae.config.block_out_channels) - 1)  # pixels per latent
        self.names = list(loras)
        self._fused: tuple | None = None  # (adapters, weights) fused into the base weights right now
        self._kept: KeptWeights | None = None  # the original bits of the fused weights
        self._session = False  # inside `with`: keep the fusion between calls
        for name, lora in loras.items():
            source = (sources or {}).get(name, name)
            check_compatible(lora, base, source, known)
            tensors = {k: v.clone() for k, v in lora.tensors.items()}
            try:
                with quiet_transformers():
                    self.pipe.load_lora_weights(tensors, adapter_name=name)
            except (RuntimeError, ValueError, KeyError, TypeError) as err:  # shape mismatch, bad layout
                raise ValueError(f"LoRA '{source}' cannot be loaded into '{base.name}': {err}") from err

    def __enter__(self) -> Composer:
        self._session = True
        return self

    def __exit__(self, *exc) -> None:
        self._session = False
        self._unfuse()

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
        with self.lock:  # another thread on this base waits while its weights are fused
            try:
                return self._generate(strategy, request, settings, seed)
            finally:
                if not self._session:
                    self._unfuse()

    def _generate(self, strategy: str, request: Request, settings: Sampling, seed: int) -> np.ndarray:
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
        if strategy == "regional":
            return self._regional(request.prompt, active, weights, settings, seed)
        return self._composite(request.prompt, active, weights, settings, seed)

    def _unfuse(self) -> None:
        """Unfuse (peft's bookkeeping), then put back the exact original bits (subtracting the LoRA delta
        again is off by rounding), and let other users of the base in."""
        if self._fused is None:
            return
        try:
            self.pipe.unfuse_lora()
        finally:
            self._kept.restore()
            self._fused, self._kept = None, None
            self.lock.release()

    def _fuse(self, active: tuple[str, ...], weights: dict[str, float]) -> None:
        """Fuse the active adapters at their weights into the (shared) base weights, keeping their bits."""
        self.lock.acquire()  # held while fused: released by `_unfuse`
        layers = [m.get_base_layer() for model in (self.base.unet, self.base.text_encoder)
                  for m in model.modules() if hasattr(m, "merge") and hasattr(m, "get_base_layer")]
        self._kept = KeptWeights([p for layer in layers for p in (layer.weight, layer.bias) if p is not None])
        self._fused = (active, tuple(weights[n] for n in active))
        try:
            self.pipe.enable_lora()
            self.pipe.set_adapters(list(active), [weights[n] for n in active])
            self.pipe.fuse_lora(adapter_names=list(active), lora_scale=1.0)
        except BaseException:
            self._unfuse()
            raise

    def _fused_call(self, prompt, weights, settings, seed) -> np.ndarray:
        """Fuse once per weight setting, then every image of that setting costs a plain U-Net pass per
        step (merged peft layers skip their adapter branch)."""
        active = tuple(n for n in self.names if weights[n] != 0)
        if self._fused != (active, tuple(weights[n] for n in active)):
            self._unfuse()
            if active:
                self._fuse(active, weights)
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

    def _composite(self, prompt, active, weights, settings, seed) -> np.ndarray:
        """Average over the LoRAs of each LoRA's guided noise prediction, step by step."""
        if len(active) <= 1:
            with self.adapters(weights):
                return self._call(prompt, settings, seed)
        branches = [(prompt, {name: weights[name]}) for name in active]
        return self._denoise(branches, settings, seed, lambda guided: torch.stack(guided).mean(0))

    def _regional(self, prompt, active, weights, settings, seed) -> np.ndarray:
        """The character's LoRAs and words in its region, the others outside: one guided U-Net pass per
        region, the two noise predictions blended with the (soft) region mask at every step."""
        if self.regions is None:
            raise ValueError("The `regional` strategy needs `composition.regional` (the layout)")
        inside_prompt, outside_prompt = self.regions.prompts(prompt, active)
        branches = [(inside_prompt, {n: weights[n] for n in active if n in self.regions.inside}),
                    (outside_prompt, {n: weights[n] for n in active if n not in self.regions.inside})]
        latent_size = (settings.height // self.vae_scale, settings.width // self.vae_scale)
        mask = F.interpolate(torch.from_numpy(self.regions.mask)[None, None], size=latent_size, mode="area")
        mask = mask.to(self.base.device)
        return self._denoise(branches, settings, seed, lambda g: mask * g[0] + (1 - mask) * g[1])

    @torch.no_grad()
    def _denoise(self, branches, settings, seed, combine) -> np.ndarray:
        """The sampling loop with several branches (prompt, adapter weights): at each step every branch's
        classifier-free-guided noise prediction, `combine`d into the one the scheduler steps with."""
        pipe, guidance, device = self.pipe, settings.guidance_scale, self.base.device
        conditions = []
        for prompt, weights in branches:  # each LoRA may also change the text encoder
            with self.adapters(weights):
                conditions.append(self._conditioning(prompt, settings))
        scheduler = pipe.scheduler
        scheduler.set_timesteps(settings.steps)
        generator = torch.Generator().manual_seed(seed)  # on the CPU, as in `_call`: same noise on any device
        latents = pipe.prepare_latents(  # scaled by the scheduler's initial sigma, as the pipeline's
            1, pipe.unet.config.in_channels, settings.height, settings.width, conditions[0][0].dtype, device,
            generator,
        )
        dtype = latents.dtype
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            guided = []
            for (_, weights), (embed, added) in zip(branches, conditions, strict=True):
                with self.adapters(weights):
                    uncond, cond = pipe.unet(model_in, t, encoder_hidden_states=embed,
                                             added_cond_kwargs=added).sample.chunk(2)
                guided.append(uncond + guidance * (cond - uncond))
            # in the weights' dtype: a float32 region mask (or a scheduler's float32 maths) would otherwise
            # hand a bfloat16/float16 U-Net float32 latents at the next step
            latents = scheduler.step(combine(guided).to(dtype), t, latents).prev_sample.to(dtype)
        return self._decode(latents)

    def _conditioning(self, prompt: str, settings: Sampling) -> tuple[torch.Tensor, dict | None]:
        """(unconditional and conditional text embeddings, batched; SDXL's added conditioning: the pooled
        embeddings and the size/crop ids of a full picture at the sampling size, as its pipeline uses)."""
        pipe, device, negative = self.pipe, self.base.device, settings.negative_prompt or None
        if not self.base.is_sdxl:
            cond, uncond = pipe.encode_prompt(prompt, device, 1, True, negative)
            return torch.cat([uncond, cond]), None
        cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(
            prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt=negative,
        )
        size = (settings.height, settings.width)
        time_ids = pipe._get_add_time_ids(size, (0, 0), size, dtype=cond.dtype,
                                          text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim)
        added = {"text_embeds": torch.cat([uncond_pooled, pooled]),
                 "time_ids": torch.cat([time_ids, time_ids]).to(device)}
        return torch.cat([uncond, cond]), added

    def _decode(self, latents: torch.Tensor) -> np.ndarray:
        """The picture of the final latents (in float32 for a float16 SDXL VAE: `working_vae`)."""
        vae = working_vae(self.pipe.vae)
        image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
        return ((image[0].permute(1, 2, 0).float().clamp(-1, 1) + 1) / 2).cpu().numpy()

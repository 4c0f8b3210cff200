"""A stand-in for SDXL in both forms `diffusion.sdxl.path` accepts: a diffusers folder, and one `.safetensors`
file in the original sgm key layout (as `sd_xl_base_1.0.safetensors` comes: `model.diffusion_model.*`,
`first_stage_model.*`, CLIP-L under `conditioner.embedders.0.transformer.*`, OpenCLIP-bigG in open_clip's own
layout under `conditioner.embedders.1.model.*`) with a config folder (SDXL's configs and tokenizers, no
weights). SDXL's layout at a tiny width (`sdxl_modules`); the two text encoders differ in width, as CLIP-L and
bigG do (diffusers tells them apart by it). Random weights: it draws noise."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

WIDTHS, TEXT_WIDTHS = (32, 64, 64), (32, 48)  # SDXL: (320, 640, 1280), (768, 1280)


def pipeline(seed: int):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    from ..backends.clip_tokenizer import clip_tokenizer
    from ..backends.sd_architecture import sdxl_modules

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet, vae, te1, te2 = sdxl_modules(WIDTHS, TEXT_WIDTHS, 2)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")  # what SDXL's folder ships
    return StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2,
                                     tokenizer=clip_tokenizer(), tokenizer_2=clip_tokenizer(), unet=unet,
                                     scheduler=scheduler, add_watermarker=False)


def open_clip_layout(te2) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModelWithProjection's weights in open_clip's layout (the inverse of diffusers'
    `convert_open_clip_checkpoint`): q/k/v joined into `in_proj`, the projection as a [hidden, dim] matrix."""
    state, out = te2.state_dict(), {}
    out["token_embedding.weight"] = state["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = state["text_model.embeddings.position_embedding.weight"]
    out["ln_final.weight"] = state["text_model.final_layer_norm.weight"]
    out["ln_final.bias"] = state["text_model.final_layer_norm.bias"]
    out["text_projection"] = state["text_projection.weight"].T.contiguous()
    names = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
             "self_attn.out_proj": "attn.out_proj"}
    for i in range(te2.config.num_hidden_layers):
        layer, block = f"text_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for part in ("weight", "bias"):
            out[f"{block}attn.in_proj_{part}"] = torch.cat(
                [state[f"{layer}self_attn.{p}_proj.{part}"] for p in "qkv"])
            for ours, theirs in names.items():
                out[f"{block}{theirs}.{part}"] = state[f"{layer}{ours}.{part}"]
    return out


def write(folder: Path, seed: int = 0) -> dict:
    """`folder/diffusers/` (the diffusers layout), `folder/sdxl-standin.safetensors` (the sgm layout, the same
    weights) and `folder/config/` (the folder's configs and tokenizers alone). Returns the parameters for the
    folder; `single_file_parameters` gives the ones for the file."""
    from safetensors.torch import save_file

    from ..ldm_layout import unet_to_ldm, vae_to_ldm
    from ..lora_format import text_model_path

    folder.mkdir(parents=True, exist_ok=True)
    pipe = pipeline(seed)
    pipe.save_pretrained(folder / "diffusers")
    config = folder / "config"
    shutil.rmtree(config, ignore_errors=True)
    shutil.copytree(folder / "diffusers", config, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    tensors = {
        **unet_to_ldm(pipe.unet.state_dict(), 2, len(WIDTHS), {1, 2}),
        **vae_to_ldm(pipe.vae.state_dict(), len(pipe.vae.config.block_out_channels)),
        **{f"conditioner.embedders.0.transformer.{text_model_path(k)}": v
           for k, v in pipe.text_encoder.state_dict().items()},
        **{f"conditioner.embedders.1.model.{k}": v for k, v in open_clip_layout(pipe.text_encoder_2).items()},
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "sdxl-standin.safetensors"))
    return {"diffusion": {"sdxl": {"path": str(folder / "diffusers"), "config": None}}}


def single_file_parameters(folder: Path) -> dict:
    """The parameters that load the stand-in from its single sgm-layout file and its config folder."""
    return {"diffusion": {"sdxl": {"path": str(folder / "sdxl-standin.safetensors"),
                                   "config": str(folder / "config")}}}

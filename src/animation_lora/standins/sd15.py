"""A stand-in for Stable Diffusion 1.5 in both forms `diffusion.sd15.path` accepts: a diffusers folder and
one `.safetensors` file in the original LDM key layout with its LDM yaml (as `v1-5-pruned-emaonly` and
`v1-inference.yaml` come). SD 1.5's layout at a tiny width: a 4-level U-Net with cross-attention at its
three finer levels and 2 ResNets per level, a 4-level VAE (latents 1/8 of the picture), a CLIP text
encoder with quick-GELU and CLIP's tokenizer. Random weights: it draws noise."""

from __future__ import annotations

from pathlib import Path

import torch

WIDTHS, TEXT_WIDTH, VAE_WIDTH = (32, 32, 64, 64), 64, 32  # SD 1.5: (320, 640, 1280, 1280), 768, 128
LDM_YAML = """\
# The LDM config of this stand-in: SD 1.5's v1-inference.yaml with the stand-in's widths
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    num_timesteps_cond: 1
    log_every_t: 200
    timesteps: 1000
    first_stage_key: "jpg"
    cond_stage_key: "txt"
    image_size: 64
    channels: 4
    cond_stage_trainable: false
    conditioning_key: crossattn
    monitor: val/loss_simple_ema
    scale_factor: 0.18215
    use_ema: False
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        image_size: 32
        in_channels: 4
        out_channels: 4
        model_channels: {model_channels}
        attention_resolutions: [4, 2, 1]
        num_res_blocks: 2
        channel_mult: {channel_mult}
        num_heads: 8
        use_spatial_transformer: True
        transformer_depth: 1
        context_dim: {context_dim}
        use_checkpoint: True
        legacy: False
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        monitor: val/rec_loss
        ddconfig:
          double_z: true
          z_channels: 4
          resolution: 256
          in_channels: 3
          out_ch: 3
          ch: {vae_width}
          ch_mult: [1, 1, 1, 1]
          num_res_blocks: 2
          attn_resolutions: []
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
"""


def modules(seed: int):
    """(U-Net, VAE, text encoder) of SD 1.5's layout, seeded (torch's global RNG is left as it was)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=64, block_out_channels=WIDTHS, layers_per_block=2, cross_attention_dim=TEXT_WIDTH,
            attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        vae = AutoencoderKL(
            block_out_channels=(VAE_WIDTH,) * 4, layers_per_block=2, latent_channels=4, sample_size=512,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=49408, hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
            num_attention_heads=1, num_hidden_layers=2, max_position_embeddings=77, hidden_act="quick_gelu",
            projection_dim=TEXT_WIDTH, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ))
    return unet.eval(), vae.eval(), text.eval()


def write(folder: Path, seed: int = 0) -> dict:
    """`folder/diffusers/` (the diffusers layout) and `folder/sd15-standin.safetensors` + `.yaml` (the LDM
    layout), the same weights in both. Returns the parameters for the folder; `single_file_parameters`
    gives the ones for the file."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from safetensors.torch import save_file

    from ..backends.clip_tokenizer import clip_tokenizer
    from ..ldm_layout import unet_to_ldm, vae_to_ldm

    folder.mkdir(parents=True, exist_ok=True)
    unet, vae, text = modules(seed)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1)  # what SD 1.5's folder ships
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=clip_tokenizer(), unet=unet,
                            scheduler=scheduler, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder / "diffusers")
    tensors = {
        **unet_to_ldm(unet.state_dict(), 2, len(WIDTHS), {0, 1, 2}),
        **vae_to_ldm(vae.state_dict(), 4),
        **{f"cond_stage_model.transformer.text_model.{k}": v for k, v in text.state_dict().items()},
    }
    single = folder / "sd15-standin.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(single))
    single.with_suffix(".yaml").write_text(LDM_YAML.format(
        model_channels=WIDTHS[0], channel_mult=[w // WIDTHS[0] for w in WIDTHS], context_dim=TEXT_WIDTH,
        vae_width=VAE_WIDTH,
    ))
    return {"diffusion": {"sd15": {"path": str(folder / "diffusers"), "original_config": None}}}


def single_file_parameters(folder: Path) -> dict:
    """The parameters that load the stand-in from its single LDM-layout file instead of the folder."""
    single = folder / "sd15-standin.safetensors"
    return {"diffusion": {"sd15": {"path": str(single), "original_config": str(single.with_suffix(".yaml"))}}}

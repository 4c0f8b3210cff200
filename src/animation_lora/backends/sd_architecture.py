"""The Stable Diffusion 1.5 architecture, built in code at any width: a `UNet2DConditionModel`, an
`AutoencoderKL` and a `CLIPTextModel` of SD 1.5's shape (`sd_modules`), and SD 1.5's noise schedule for
training (DDPM) and sampling (DDIM) (`schedulers`). The `tiny` diffusion backend, the demo base's pretraining
(`animation_lora.pretrain`) and the benchmarks build their models here."""

from __future__ import annotations

from typing import Any


def schedulers():
    """(DDPM for training noise, DDIM for sampling), SD 1.5's scaled-linear betas over 1,000 steps."""
    from diffusers import DDIMScheduler, DDPMScheduler

    kwargs = dict(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
    )
    return DDPMScheduler(**kwargs), DDIMScheduler(**kwargs, clip_sample=False, set_alpha_to_one=False)


def sd_modules(
    widths: tuple[int, ...],
    text_width: int,
    text_layers: int,
    vae_widths: tuple[int, ...] = (8, 16, 16, 16),
    attention_levels: int = 1,
    size: int = 64,
) -> tuple[Any, Any, Any]:
    """(U-Net, VAE, text encoder) of the SD-1.5 shape with fresh weights from torch's global RNG, in eval
    mode: U-Net `widths` with cross-attention at the `attention_levels` finest resolutions, a VAE that
    halves the picture at each of its `vae_widths` but the last (SD: 4 levels, latents 1/8 of `size`), a
    CLIP text encoder `text_width` wide with `text_layers` layers and CLIP's vocabulary."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    plain = len(widths) - attention_levels
    unet = UNet2DConditionModel(
        sample_size=size // 2 ** (len(vae_widths) - 1),
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=tuple(widths),
        down_block_types=("CrossAttnDownBlock2D",) * attention_levels + ("DownBlock2D",) * plain,
        up_block_types=("UpBlock2D",) * plain + ("CrossAttnUpBlock2D",) * attention_levels,
        cross_attention_dim=text_width,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=tuple(vae_widths),
        down_block_types=("DownEncoderBlock2D",) * len(vae_widths),
        up_block_types=("UpDecoderBlock2D",) * len(vae_widths),
        norm_num_groups=8,
        sample_size=size,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=text_width,
            intermediate_size=2 * text_width,
            num_attention_heads=4,
            num_hidden_layers=text_layers,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    return unet.eval(), vae.eval(), text_encoder.eval()

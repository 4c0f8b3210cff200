"""The Stable Diffusion 1.5 and SDXL architectures, built in code at any width: a `UNet2DConditionModel`, an
`AutoencoderKL` and a `CLIPTextModel` of SD 1.5's shape (`sd_modules`), SDXL's U-Net with its two text
encoders (`sdxl_unet`, `sdxl_modules`), and the noise schedule both share for training (DDPM) and sampling
(DDIM) (`schedulers`). The `tiny` and `tiny_sdxl` diffusion backends, the demo base's pretraining
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


# SDXL's U-Net (stabilityai/stable-diffusion-xl-base-1.0, unet/config.json): three levels, two layers each,
# cross-attention on the two coarser ones; the text hidden states are CLIP-L's (768) and OpenCLIP-bigG's
# (1280) side by side; the pooled bigG embedding and six size/crop numbers enter through `text_time`.
SDXL_UNET = dict(
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    layers_per_block=2,
    use_linear_projection=True,
    addition_embed_type="text_time",
)
SDXL_TIME_IDS = 6  # original (h, w), crop (top, left), target (h, w): kohya's and diffusers' order


def sdxl_unet(widths, transformer_layers, heads, text_widths: tuple[int, int], pooled_width: int,
              time_embed_width: int, sample_size: int, norm_num_groups: int = 32):
    """An SDXL-shaped U-Net (SDXL_UNET's layout) at the given widths; SDXL itself is widths (320, 640, 1280),
    transformer_layers (1, 2, 10), heads (5, 10, 20), text_widths (768, 1280), pooled 1280, time 256."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        **SDXL_UNET,
        sample_size=sample_size,
        block_out_channels=tuple(widths),
        transformer_layers_per_block=tuple(transformer_layers),
        attention_head_dim=tuple(heads),
        cross_attention_dim=sum(text_widths),
        addition_time_embed_dim=time_embed_width,
        projection_class_embeddings_input_dim=pooled_width + SDXL_TIME_IDS * time_embed_width,
        norm_num_groups=norm_num_groups,
    )


def sdxl_modules(
    widths: tuple[int, int, int],
    text_widths: tuple[int, int],
    text_layers: int,
    vae_widths: tuple[int, ...] = (8, 16, 16, 16),
    size: int = 64,
) -> tuple[Any, Any, Any, Any]:
    """(U-Net, VAE, CLIP-L-shaped text encoder, bigG-shaped text encoder with projection) of SDXL's shape,
    fresh weights from torch's global RNG, in eval mode, small enough for the fast tests."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    unet = sdxl_unet(widths, (1, 1, 2), (2, 2, 4), text_widths, text_widths[1], 8,
                     size // 2 ** (len(vae_widths) - 1), norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=tuple(vae_widths),
        down_block_types=("DownEncoderBlock2D",) * len(vae_widths),
        up_block_types=("UpDecoderBlock2D",) * len(vae_widths), norm_num_groups=8, sample_size=size,
        scaling_factor=0.13025,  # SDXL's VAE
    )
    clip = dict(vocab_size=49408, num_attention_heads=4, num_hidden_layers=text_layers,
                max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    text_1 = CLIPTextModel(CLIPTextConfig(hidden_size=text_widths[0], intermediate_size=2 * text_widths[0],
                                          hidden_act="quick_gelu", **clip))
    text_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        hidden_size=text_widths[1], intermediate_size=2 * text_widths[1], projection_dim=text_widths[1],
        hidden_act="gelu", **clip))
    return unet.eval(), vae.eval(), text_1.eval(), text_2.eval()

"""SDXL (issue 23) on the tiny SDXL-shaped base: training with buckets of two shapes and their size
conditioning, the file in kohya's SDXL format (names checked against SDXL's published key layout), diffusers
loading it to the same outputs as our trained model, and composition with two SDXL LoRAs."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from animation_lora.backends.diffusion import make_base_model
from animation_lora.composition import Composer, Request
from animation_lora.composition.composer import STRATEGIES
from animation_lora.composition.regions import make_regions
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.lora_format import LoraFile, architecture_of, describe, module_names, to_kohya, unet_path
from animation_lora.training import TrainConfig, train_lora
from animation_lora.training.config import DatasetSettings
from animation_lora.training.data import Example, Fit, bucket_fit, size_conditions

from .test_composition import SETTINGS, TOL
from .test_regional import layout

TINY_SDXL = {"backend": "tiny_sdxl", "tiny_sdxl": {"seed": 0}}
PROMPT = "marco, 3d animated character"


@pytest.fixture(scope="module")
def base():
    return make_base_model(TINY_SDXL)


def two_shape_dataset(trigger: str, seed: int):
    """Six pictures, half landscape and half portrait: two buckets."""
    rng = np.random.default_rng(seed)
    shapes = [(72, 128, 3), (128, 72, 3)]
    images = {f"i{k}": rng.integers(0, 255, shapes[k % 2], dtype=np.uint8) for k in range(6)}
    captions = {k: f"{trigger}, 3d animated character" for k in images}
    return build_lora_dataset(trigger, trigger, images, captions,
                              {k: 1.0 for k in images}, None,
                              {"target_size": 6, "resolution": 64, "batch_size": 2, "flip_aug": True})


def train(base, trigger="marco", seed=1, text_encoder_lr=(0.0, 1e-2)):
    cfg = TrainConfig.from_params(dict(
        network_dim=4, network_alpha=4, learning_rate=2e-2, text_encoder_lr=list(text_encoder_lr),
        max_train_epochs=2, resolution=64, train_batch_size=2, validate_every_n_steps=2, seed=seed,
    ))
    data = two_shape_dataset(trigger, seed)
    return train_lora(base, data, cfg), data


@pytest.fixture(scope="module")
def trained(base):
    return train(base)


def image(pipe, prompt=PROMPT):
    pipe.set_progress_bar_config(disable=True)
    return pipe(prompt, num_inference_steps=2, height=64, width=64,
                generator=torch.Generator().manual_seed(0), output_type="np").images[0]


def test_size_conditioning_is_kohyas_original_crop_and_target_mirrored_when_flipped():
    fit = Fit(bucket=(64, 32), resized=(80, 45), crop=(6, 8))
    example = Example("a", np.zeros((32, 64, 3), np.uint8), "a", None, (90, 160), fit)
    ids = size_conditions([example, example], [False, True], "cpu")
    # (original h, w, crop top, left, target h, w); flipped: the crop's left from the other side, 80 - 8 - 64
    assert ids.tolist() == [[90, 160, 6, 8, 32, 64], [90, 160, 6, 8, 32, 64]]
    fit = Fit(bucket=(64, 32), resized=(80, 45), crop=(6, 4))
    example = dataclasses.replace(example, fit=fit)
    assert size_conditions([example], [True], "cpu").tolist() == [[90, 160, 6, 12, 32, 64]]


def test_sdxl_buckets_of_film_frames_follow_kohyas_no_upscale_rule():
    settings = DatasetSettings(resolution=1024, bucket_reso_steps=64, bucket_no_upscale=True)
    assert bucket_fit(1920, 1080, settings, 1024) == Fit((1344, 768), (1365, 768), (0, 10))  # SDXL's 16:9
    assert bucket_fit(640, 360, settings, 1024).bucket == (640, 320)  # a small frame is not enlarged
    assert bucket_fit(1024, 1024, settings, 1024) == Fit((1024, 1024), (1024, 1024), (0, 0))
    upscaling = dataclasses.replace(settings, bucket_no_upscale=False, min_bucket_reso=256,
                                    max_bucket_reso=2048)
    assert bucket_fit(640, 360, upscaling, 1024) == Fit((1024, 576), (1024, 576), (0, 0))


def test_training_uses_two_buckets_and_records_them(base, trained):
    result, data = trained
    # 128x72 at 64 px, no upscale (kohya's rule): shrunk to about 64^2's area (114x64), cropped to 32-px steps
    assert result.buckets == {(64, 96): 3, (96, 64): 3}
    meta = describe(result, data, base)
    info = json.loads(meta["ss_bucket_info"])
    assert [b["resolution"] for b in info["buckets"].values()] == [[64, 96], [96, 64]]
    assert [b["count"] for b in info["buckets"].values()] == [3, 3]
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert meta["ss_resolution"] == "(64, 64)" and meta["modelspec.resolution"] == "64x64"
    val = result.history.val_loss.dropna()
    assert np.isfinite(val).all() and val.iloc[-1] < val.iloc[0]  # it learned


def test_the_file_is_in_kohyas_sdxl_layout(base, trained):
    result, _ = trained
    tensors = to_kohya(result.unet, result.text_encoder, 4, "float", "sdxl")
    modules = {k.split(".")[0] for k in tensors}
    assert modules <= module_names(base)
    unet = {m for m in modules if m.startswith("lora_unet_")}
    assert unet and all(m.startswith(("lora_unet_input_blocks_", "lora_unet_middle_block_",
                                      "lora_unet_output_blocks_")) for m in unet)
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q" in unet
    assert "lora_unet_middle_block_1_proj_in" in unet
    # text_encoder_lr [0, x]: LoRA on the second encoder only
    assert {m.split("_text_model")[0] for m in modules - unet} == {"lora_te2"}
    down = tensors["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight"]
    up = tensors["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight"]
    assert down.shape == (4, 64) and up.shape == (64, 4)
    assert architecture_of(LoraFile(tensors, {})) == "sdxl"


def published_sdxl_attention_blocks() -> dict[str, int]:
    """SDXL base 1.0's transformer blocks as its original checkpoint (sd_xl_base_1.0.safetensors, the layout
    sd-scripts' SDXL U-Net loads) names them: block -> transformer depth."""
    return {**{f"input_blocks_{i}_1": 2 for i in (4, 5)}, **{f"input_blocks_{i}_1": 10 for i in (7, 8)},
            "middle_block_1": 10, **{f"output_blocks_{i}_1": 10 for i in (0, 1, 2)},
            **{f"output_blocks_{i}_1": 2 for i in (3, 4, 5)}}


def test_names_on_the_real_sdxl_unet_match_sd_scripts_layout():
    """sd-scripts' networks/lora.py names a module `lora_unet_` + its path in the original U-Net: every
    attention module our trainer targets on SDXL's real U-Net (built without memory) has the name sd-scripts
    gives it, and every one of theirs is ours."""
    from accelerate import init_empty_weights

    from animation_lora.backends.sd_architecture import sdxl_unet
    from animation_lora.training import UNET_TARGETS

    with init_empty_weights():
        unet = sdxl_unet((320, 640, 1280), (1, 2, 10), (5, 10, 20), (768, 1280), 1280, 256, 128)
    ours = {"lora_unet_" + unet_path(p, "sdxl").replace(".", "_") for p, _ in unet.named_modules()
            if any(p.endswith("." + t) for t in UNET_TARGETS)}
    inner = ["attn1_to_q", "attn1_to_k", "attn1_to_v", "attn1_to_out_0", "attn2_to_q", "attn2_to_k",
             "attn2_to_v", "attn2_to_out_0", "ff_net_0_proj", "ff_net_2"]
    theirs = set()
    for block, depth in published_sdxl_attention_blocks().items():
        theirs |= {f"lora_unet_{block}_proj_in", f"lora_unet_{block}_proj_out"}
        theirs |= {f"lora_unet_{block}_transformer_blocks_{d}_{m}" for d in range(depth) for m in inner}
    assert ours == theirs and len(ours) == 722  # 70 transformer blocks x 10 + 11 x (proj_in, proj_out)


def test_diffusers_loads_it_to_the_same_outputs_and_unloads_to_the_base(base, trained):
    result, _ = trained
    tensors = to_kohya(result.unet, result.text_encoder, 4, "float", "sdxl")
    pipe = base.pipeline()
    before = image(pipe)
    pipe.load_lora_weights({k: v.clone() for k, v in tensors.items()}, adapter_name="marco")
    loaded = image(pipe)
    assert np.abs(loaded - before).max() > 1e-3  # the LoRA changes the picture
    ours = image(base.pipeline(unet=result.unet, text_encoder=result.text_encoder))
    assert np.abs(loaded - ours).max() < TOL  # the file is exactly what was trained
    pipe.unload_lora_weights()
    assert np.abs(image(pipe) - before).max() == 0


@pytest.fixture(scope="module")
def loras(base, trained):
    result, _ = trained
    other, _ = train(base, "scene_0", seed=2, text_encoder_lr=(1e-2, 1e-2))
    return {"character": LoraFile(to_kohya(result.unet, result.text_encoder, 4, "float", "sdxl"), {}),
            "background": LoraFile(to_kohya(other.unet, other.text_encoder, 4, "float", "sdxl"), {})}


def test_two_sdxl_loras_compose_under_every_strategy(base, loras):
    triggers = {"character": "marco", "background": "scene_0"}
    regions = make_regions(layout(box=[0, 0, 1, 1]), list(loras), triggers, 64, 64)
    composer = Composer(base, loras, regions=regions)
    weights = {"character": 1.0, "background": 0.8}
    prompt = "marco, scene_0"

    def run(strategy, w=weights, p=prompt):
        return composer.generate(strategy, Request(p, w), SETTINGS, seed=0)

    merged, plain = run("merge"), run("base")
    assert np.abs(merged - plain).max() > 1e-3
    assert np.abs(run("fused") - merged).max() < TOL  # fusing is the same maths
    solo = run("solo", {"character": 0.9, "background": 0.0})
    for strategy in ("merge", "fused", "switch", "composite"):  # one LoRA: every strategy is that LoRA
        assert np.abs(run(strategy, {"character": 0.9, "background": 0.0}) - solo).max() < TOL, strategy
    # the character's region covers the picture: its LoRA and its words alone
    inside = composer.generate("solo", Request("marco", {"character": 1.0}), SETTINGS, 0)
    assert np.abs(run("regional") - inside).max() < TOL
    for strategy in STRATEGIES:  # every strategy draws a finite picture of the asked size
        out = run(strategy)
        assert out.shape == (64, 64, 3) and np.isfinite(out).all(), strategy
    assert np.abs(run("base") - plain).max() == 0  # the shared base is untouched afterwards


def test_a_lora_for_the_other_architecture_is_refused_both_ways(base, loras):
    sd15 = make_base_model({"backend": "tiny", "tiny": {"seed": 0}})
    with pytest.raises(ValueError, match=r"LoRA 'scene\.safetensors' does not fit the base model "
                                         r"'tiny-seed0': module 'lora_te1_text_model"):
        Composer(sd15, {"background": loras["background"]}, sources={"background": "scene.safetensors"})
    sd15_lora = {k.replace("lora_te1_", "lora_te_"): v for k, v in loras["background"].tensors.items()
                 if k.startswith("lora_te1_")}
    sd15_lora["lora_unet_down_blocks_0_attentions_0_proj_in.alpha"] = torch.tensor(4.0)
    with pytest.raises(ValueError, match=r"'marco_sd15\.safetensors' does not fit the base model "
                                         r"'tiny-sdxl-seed0': module 'lora_te_text_model"):
        Composer(base, {"c": LoraFile(sd15_lora, {})}, sources={"c": "marco_sd15.safetensors"})


@pytest.mark.parametrize("backend", ["tiny", "tiny_sdxl"])
def test_after_bf16_mixed_precision_training_the_trained_modules_sample_in_bf16(backend):
    """accelerate wraps a mixed-precision model's forward to return float32; the trainer gives the modules
    their own forward back, so the sample pipeline (bf16 VAE) takes their latents (it refused them)."""
    from animation_lora.backends.diffusion import tiny, tiny_sdxl

    base = {"tiny": tiny, "tiny_sdxl": tiny_sdxl}[backend](seed=0, device="cpu", dtype="bfloat16")
    cfg = TrainConfig.from_params(dict(network_dim=4, network_alpha=4, max_train_epochs=1, resolution=64,
                                       mixed_precision="bf16", validation_split=0))
    result = train_lora(base, two_shape_dataset("marco", 0), cfg)
    picture = image(base.pipeline(unet=result.unet, text_encoder=result.text_encoder))
    assert picture.shape == (64, 64, 3) and np.isfinite(picture).all()


def test_a_float16_sdxl_vae_encodes_and_decodes_in_float32_and_stays_float16(base):
    """kohya's --no_half_vae without casting the shared model: SDXL's VAE overflows in float16."""
    import copy

    from animation_lora.backends.diffusion import working_vae
    from animation_lora.training import LatentCache

    half = dataclasses.replace(base, vae=copy.deepcopy(base.vae).half())
    assert half.vae.config.force_upcast
    full = working_vae(half.vae)
    assert full.dtype == torch.float32 and working_vae(half.vae) is full and half.vae.dtype == torch.float16
    picture = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    latents = LatentCache(half, None).encode(picture)
    assert latents.dtype == torch.float16  # the frozen weights' dtype, as the U-Net takes them
    assert torch.allclose(latents.float(), LatentCache(base, None).encode(picture), atol=1e-2)
    assert working_vae(base.vae) is base.vae  # a float32 VAE is used as it is


def test_every_strategy_composes_on_a_bf16_base(loras):
    """Frozen weights in bfloat16 (conf/studio-sdxl.yml's): the custom loops (composite, regional) keep the
    latents in the weights' dtype (a float32 region mask made them float32, and the U-Net refused them)."""
    from animation_lora.backends.diffusion import tiny_sdxl

    half = tiny_sdxl(seed=0, device="cpu", dtype="bfloat16")
    regions = make_regions(layout(), list(loras), {"character": "marco", "background": "scene_0"}, 64, 64)
    composer = Composer(half, loras, regions=regions)
    for strategy in STRATEGIES:
        out = composer.generate(strategy, Request("marco, scene_0", {"character": 1.0, "background": 0.8}),
                                SETTINGS, 0)
        assert out.shape == (64, 64, 3) and np.isfinite(out).all(), strategy

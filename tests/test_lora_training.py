"""The trainer and the kohya export on the tiny SD-shaped model, with a small LoRA dataset made here."""

import numpy as np
import pytest
import torch

from animation_lora.backends.clip_tokenizer import clip_tokenizer
from animation_lora.backends.diffusion import make_base_model
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.lora_format import to_kohya
from animation_lora.training import LatentCache, TrainConfig, dataset_settings, train_lora

TINY = {"backend": "tiny", "tiny": {"seed": 0}}
FAST = dict(
    network_dim=4,
    network_alpha=4,
    learning_rate=1e-3,
    max_train_epochs=1,
    resolution=64,
    train_batch_size=2,
    validate_every_n_steps=2,
    min_snr_gamma=5.0,
)


@pytest.fixture(scope="module")
def base():
    return make_base_model(TINY)


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(0)
    images = {f"img{k}": rng.integers(0, 255, (80, 64, 3), dtype=np.uint8) for k in range(6)}
    captions = {k: f"marco, 3d animated character, pixar style, pose {i}" for i, k in enumerate(images)}
    params = {"target_size": 6, "resolution": 64, "batch_size": 2, "shuffle_caption": True, "keep_tokens": 3}
    return build_lora_dataset("marco", "marco", images, captions, {k: 1.0 for k in images}, None, params)


def test_tokenizer_matches_openai_clip_ids():
    tok = clip_tokenizer()
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok.model_max_length == 77


def test_tiny_base_is_deterministic_from_its_seed_and_leaves_the_global_rng_alone():
    from animation_lora.backends.diffusion import tiny

    before = torch.get_rng_state()
    a = make_base_model({"backend": "tiny", "tiny": {"seed": 3}})
    b = make_base_model({"backend": "tiny", "tiny": {"seed": 4}})
    assert torch.equal(torch.get_rng_state(), before)
    assert a.model_hash != b.model_hash
    again = tiny(seed=3)
    assert again.model_hash == a.model_hash
    assert all(torch.equal(v, again.unet.state_dict()[k]) for k, v in a.unet.state_dict().items())
    assert torch.equal(torch.get_rng_state(), before)


def test_tokenizer_files_are_written_once_to_the_user_cache(tmp_path, monkeypatch):
    from animation_lora.backends.clip_tokenizer import clip_tokenizer_files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    clip_tokenizer_files.cache_clear()
    try:
        vocab, merges = clip_tokenizer_files()
        assert vocab.startswith(str(tmp_path / "animation_lora" / "clip_tokenizer"))
        written = (tmp_path / "animation_lora").rglob("*")
        assert sorted(p.name for p in written if p.is_file()) == ["merges.txt", "vocab.json"]
        clip_tokenizer_files.cache_clear()
        assert clip_tokenizer_files() == (vocab, merges)  # found, not rebuilt elsewhere
    finally:
        clip_tokenizer_files.cache_clear()


def test_bad_parameters_are_named():
    with pytest.raises(
        ValueError,
        match=r"`training\.args\.optimizer_type`: Input should be 'AdamW', "
        r"'AdamW8bit', 'Lion'.*\(got 'Adam'\)",
    ):
        TrainConfig.from_params({"optimizer_type": "Adam"})
    with pytest.raises(
        ValueError,
        match=r"`training\.args\.learning_rat`: unknown key; known keys: "
        r".*learning_rate",
    ):
        TrainConfig.from_params({"learning_rat": 1.0})
    with pytest.raises(ValueError, match=r"`training\.args\.foo`: unknown key; known keys: .*network_dim"):
        TrainConfig.from_params({"foo": 1})
    with pytest.raises(
        ValueError,
        match=r"`training\.args\.network_dim`: Input should be a valid "
        r"integer.*'8'",
    ):
        TrainConfig.from_params({"network_dim": "8"})
    assert TrainConfig.from_params({"network_alpha": 4, "resolution": None}).network_alpha == 4.0


def test_dataset_toml_with_an_unknown_key_is_refused(dataset):
    toml = {"general": {"caption_ext": ".txt"}, "datasets": dataset.toml["datasets"]}
    bad = type(dataset)(**{**dataset.__dict__, "toml": toml})
    with pytest.raises(
        ValueError,
        match=r"Dataset TOML of 'marco': .*`general\.caption_ext`: unknown key; "
        r"known keys: .*caption_extension",
    ):
        dataset_settings(bad)


def test_dataset_toml_values_are_typed_and_resolved_subset_over_dataset_over_general(dataset):
    subsets = [{**dataset.toml["datasets"][0]["subsets"][0], "keep_tokens": "3"}]
    toml = {"datasets": [{**dataset.toml["datasets"][0], "subsets": subsets}]}
    bad = type(dataset)(**{**dataset.__dict__, "toml": toml})
    with pytest.raises(
        ValueError,
        match=r"Dataset TOML of 'marco': .*`datasets\.0\.subsets\.0\."
        r"keep_tokens`: Input should be a valid integer \(got '3'\)",
    ):
        dataset_settings(bad)
    layered = {
        "general": {"keep_tokens": 1, "flip_aug": True, "batch_size": 8},
        "datasets": [{"batch_size": 2, "keep_tokens": 2, "subsets": [{"keep_tokens": 3}]}],
    }
    settings = dataset_settings(type(dataset)(**{**dataset.__dict__, "toml": layered}))
    resolved = (settings.keep_tokens, settings.batch_size, settings.flip_aug, settings.num_repeats)
    assert resolved == (3, 2, True, 1)


def test_network_dim_larger_than_a_layer_is_an_error(base, dataset):
    with pytest.raises(ValueError, match="network_dim 64 is larger than the smallest targeted layer"):
        train_lora(base, dataset, TrainConfig(**{**FAST, "network_dim": 64}))


def test_image_without_caption_error_or_trigger(base, dataset):
    uncaptioned = type(dataset)(**{**dataset.__dict__, "captions": {**dataset.captions, "img0": "  "}})
    with pytest.raises(ValueError, match="Image 'img0' of 'marco' has no caption"):
        train_lora(base, uncaptioned, TrainConfig(**FAST))
    result = train_lora(base, uncaptioned, TrainConfig(**FAST, missing_caption="trigger"))
    assert result.tag_frequency["marco"] >= 6


def test_kohya_export_loads_in_diffusers_as_the_trained_adapter(base, dataset, tmp_path):
    """diffusers' load_lora_weights on our file gives the in-memory adapter's images (max abs diff < 1e-5),
    and they differ from the base model's."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    cfg = TrainConfig(**{**FAST, "text_encoder_lr": 8e-4, "learning_rate": 5e-3})
    result = train_lora(base, dataset, cfg)
    tensors = to_kohya(result.unet, result.text_encoder, alpha=cfg.network_alpha)
    assert any(k.startswith("lora_te_text_model_encoder_layers_0_self_attn_q_proj.") for k in tensors)
    down = tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"]
    up = tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight"]
    assert down.shape == (4, 32) and up.shape == (32, 4)
    alpha = tensors["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha"]
    assert alpha.dtype == torch.float32 and alpha.ndim == 0 and float(alpha) == 4.0
    path = tmp_path / "marco.safetensors"
    save_file(tensors, str(path))

    def render(pipe):
        pipe.set_progress_bar_config(disable=True)
        return pipe(
            "marco, 3d animated character",
            num_inference_steps=4,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images[0]

    trained = render(
        StableDiffusionPipeline(
            vae=base.vae,
            text_encoder=result.text_encoder,
            tokenizer=base.tokenizer,
            unet=result.unet,
            scheduler=base.sample_scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    )
    plain = render(base.pipeline())
    loaded_pipe = base.pipeline()
    loaded_pipe.load_lora_weights(str(path))
    loaded = render(loaded_pipe)
    loaded_pipe.unload_lora_weights()
    assert np.abs(loaded - trained).max() < 1e-5
    assert np.abs(plain - trained).max() > 1e-3


def test_resume_after_a_kill_ends_at_the_same_weights(base, dataset, tmp_path):
    cfg = dict(**{**FAST, "max_train_epochs": 3}, cache_dir=str(tmp_path), checkpoint_every_n_steps=3)
    straight = train_lora(base, dataset, TrainConfig(**{**cfg, "cache_dir": str(tmp_path / "a")}))

    class Killed(Exception):
        pass

    def kill_at_4(record):
        if record["step"] == 4:
            raise Killed

    with pytest.raises(Killed):
        train_lora(base, dataset, TrainConfig(**{**cfg, "cache_dir": str(tmp_path / "b")}), on_step=kill_at_4)
    resumed_cfg = TrainConfig(**{**cfg, "cache_dir": str(tmp_path / "b"), "resume": True})
    resumed = train_lora(base, dataset, resumed_cfg)
    assert resumed.steps == straight.steps
    a = {k: v for k, v in straight.unet.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.unet.state_dict().items() if "lora_" in k}
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_nan_loss_stops_with_a_clear_error(base, dataset, tmp_path):
    cfg = TrainConfig(
        **{
            **FAST,
            "optimizer_type": "SGD",
            "learning_rate": 1e30,
            "max_train_epochs": 3,
            "min_snr_gamma": None,
        },
        cache_dir=str(tmp_path),
        checkpoint_every_n_steps=1,
    )
    with pytest.raises(
        FloatingPointError,
        match=r"Loss became (nan|inf).*last good checkpoint is "
        r".*last\.pt",
    ):
        train_lora(base, dataset, cfg)


def test_latents_are_cached_on_disk_and_reused(base, dataset, tmp_path, monkeypatch):
    cfg = TrainConfig(**FAST, cache_latents_to_disk=True, cache_dir=str(tmp_path))
    train_lora(base, dataset, cfg)
    assert len(list((tmp_path / "latents").glob("*.safetensors"))) == 6
    calls = []
    original = LatentCache.encode
    monkeypatch.setattr(LatentCache, "encode", lambda self, image: calls.append(1) or original(self, image))
    train_lora(base, dataset, cfg)
    assert calls == []  # a rerun encodes nothing


def test_sd15_loads_a_diffusers_folder_offline_and_names_a_missing_path(base, tmp_path):
    from animation_lora.backends.diffusion import sd15

    base.pipeline().save_pretrained(tmp_path / "sd")
    loaded = sd15(str(tmp_path / "sd"))
    assert list(loaded.unet.config.block_out_channels) == list(base.unet.config.block_out_channels)
    ids = loaded.tokenizer("a photo of a cat").input_ids
    assert ids == base.tokenizer("a photo of a cat").input_ids
    with pytest.raises(FileNotFoundError, match=r"diffusion\.sd15\.path.*'/no/sd15\.safetensors'"):
        sd15("/no/sd15.safetensors")
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"diffusion\.sd15\.original_config.*model\.yaml"):
        sd15(str(single))


def test_a_base_swapped_in_at_the_same_path_is_another_base(base, tmp_path):
    """Issue 25, 3: the SD-1.5 identity was the file name and size: a fine-tune saved at the same path reused
    the old base's latents and resume checkpoint. Now the weights identify it."""
    from animation_lora.backends.diffusion import make_base_model, sd15

    base.pipeline().save_pretrained(tmp_path / "sd")
    first = sd15(str(tmp_path / "sd"))
    assert first.model_hash == sd15(str(tmp_path / "sd")).model_hash  # the same weights: the same base
    other = make_base_model({"backend": "tiny", "tiny": {"seed": 1}})
    other.pipeline().save_pretrained(tmp_path / "sd")  # swapped in at the same path, same file names
    swapped = sd15(str(tmp_path / "sd"))
    assert swapped.model_hash != first.model_hash
    cache = LatentCache(first, str(tmp_path / "cache"))
    assert LatentCache(swapped, str(tmp_path / "cache")).vae_key != cache.vae_key  # fresh latents


def test_save_every_n_epochs_writes_kohya_style_saves_and_samples_per_epoch(dataset):
    from animation_lora.params import parse
    from animation_lora.pipelines.training.nodes import train
    from animation_lora.pipelines.training.parameters import Training

    training = parse(Training, {
        "args": {**FAST, "max_train_epochs": 3, "save_every_n_epochs": 1},
        "text_encoder_lr_ratio": None,
        "sample_prompts": ["{trigger}", "{trigger}, running"],
        "sampling": {"steps": 2, "size": 64, "seed": 0},
    }, "training")
    out = train(dataset, {}, training, TINY)
    lora, epochs, metrics = out["lora"], out["lora_epochs"], out["training_metrics"]
    samples = out["training_samples"]
    assert sorted(epochs) == ["marco-000001", "marco-000002"]
    assert epochs["marco-000001"].metadata["ss_epoch"] == "1" and lora.metadata["ss_epoch"] == "3"
    first = epochs["marco-000001"].tensors
    assert set(first) == set(lora.tensors)
    ups = [k for k in first if k.endswith("lora_up.weight")]
    assert any(float((first[k] - lora.tensors[k]).abs().max()) > 0 for k in ups)
    assert samples.size[0] == 2 * 128 and samples.size[1] > 3 * 128  # 3 rows (epochs 1, 2, final) x 2 prompts
    assert {"loss", "lr", "val_loss"} <= set(metrics) and metrics["loss"][0]["step"] == 1


TINY_LDM_YAML = """
model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    timesteps: 1000
    image_size: 8
    channels: 4
    cond_stage_trainable: false
    conditioning_key: crossattn
    scale_factor: 0.18215
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params: {image_size: 8, in_channels: 4, out_channels: 4, model_channels: 32, attention_resolutions: [1],
               num_res_blocks: 1, channel_mult: [1, 2], num_heads: 8, use_spatial_transformer: true,
               transformer_depth: 1, context_dim: 64, legacy: false}
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        ddconfig: {double_z: true, z_channels: 4, resolution: 64, in_channels: 3, out_ch: 3, ch: 32,
                   ch_mult: [1, 1, 1, 1], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
"""


def test_sd15_single_file_in_the_ldm_layout_loads_offline(tmp_path):
    """A tiny SD-1-shaped checkpoint written in the original LDM key layout, with its LDM yaml: U-Net, VAE
    and text encoder come back with the weights that were written, nothing fetched."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from animation_lora.backends.diffusion import sd15
    from animation_lora.ldm_layout import unet_to_ldm, vae_to_ldm

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32,) * 4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        sample_size=64,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=1,
            num_hidden_layers=2,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
        )
    )
    tensors = {
        **unet_to_ldm(unet.state_dict(), 1, 2, {0}),
        **vae_to_ldm(vae.state_dict(), 4),
        **{f"cond_stage_model.transformer.text_model.{k}": v for k, v in text.state_dict().items()},
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / "tiny-sd1.safetensors"))
    (tmp_path / "tiny-sd1.yaml").write_text(TINY_LDM_YAML)  # found beside the checkpoint
    loaded = sd15(str(tmp_path / "tiny-sd1.safetensors"))
    for original, back in ((unet, loaded.unet), (vae, loaded.vae), (text, loaded.text_encoder)):
        theirs = back.state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in original.state_dict().items() if k in theirs)
        assert len(set(original.state_dict()) - set(theirs)) == 0
    assert loaded.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]

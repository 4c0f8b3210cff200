"""Composition strategies on the tiny base with two small LoRAs trained here: identities that must hold,
and the bad inputs."""

import dataclasses
import logging

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from animation_lora.backends.diffusion import make_base_model
from animation_lora.composition import Composer, Request, fill_template, parse_prompt
from animation_lora.composition.lora_set import gather
from animation_lora.composition.parameters import Composition, Sampling
from animation_lora.composition.prompts import build_requests
from animation_lora.datasets import LoraInputFolderDataset, read_lora
from animation_lora.lora_dataset import build_lora_dataset
from animation_lora.lora_format import LoraFile, to_kohya
from animation_lora.params import parse
from animation_lora.pipelines.composition.nodes import gather_loras, generate_compositions
from animation_lora.training import TrainConfig, train_lora
from tests.conftest import PROJECT_ROOT

SETTINGS = Sampling(steps=4, guidance_scale=7.5, height=64, width=64, negative_prompt="", switch_every=2)
TINY = {"backend": "tiny", "tiny": {"seed": 0}}
BASE_PARAMETERS = PROJECT_ROOT / "conf" / "base" / "parameters_composition.yml"
TOL = 1e-5  # float32 on CPU: the strategies agree to the last few bits


def small_lora(base, seed: int, trigger: str) -> LoraFile:
    rng = np.random.default_rng(seed)
    images = {f"i{k}": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for k in range(4)}
    data = build_lora_dataset(
        trigger,
        trigger,
        images,
        {k: f"{trigger}, pixar style" for k in images},
        {k: 1.0 for k in images},
        None,
        {"target_size": 4, "resolution": 64, "batch_size": 2},
    )
    cfg = TrainConfig(
        network_dim=4,
        network_alpha=4,
        learning_rate=2e-2,
        text_encoder_lr=1e-2,
        max_train_epochs=2,
        resolution=64,
        validation_split=0,
        validate_every_n_steps=0,
        seed=seed,
    )
    result = train_lora(base, data, cfg)
    tensors = to_kohya(result.unet, result.text_encoder, alpha=4)
    return LoraFile(tensors, {"modelspec.trigger_phrase": trigger})


@pytest.fixture(scope="module")
def base():
    return make_base_model(TINY)


@pytest.fixture(scope="module")
def loras(base):
    return {"character": small_lora(base, 1, "marco"), "background": small_lora(base, 2, "scene_0")}


@pytest.fixture(scope="module")
def composer(base, loras):
    return Composer(base, loras)


def composition(values: dict) -> Composition:
    """The `composition` block as the parameters hook hands it to a node."""
    return parse(Composition, values, "composition")


def run(composer, strategy, weights, prompt="marco in scene_0"):
    return composer.generate(strategy, Request(prompt, weights), SETTINGS, seed=0)


def test_one_lora_every_strategy_is_the_same_image(composer):
    weights = {"character": 0.9, "background": 0.0}
    solo = run(composer, "solo", weights)
    for strategy in ("merge", "fused", "switch", "composite"):
        assert np.abs(run(composer, strategy, weights) - solo).max() < TOL, strategy
    assert np.abs(run(composer, "base", weights) - solo).max() > 1e-3  # the LoRA does something


def test_all_weights_zero_is_the_base_model(composer):
    zero = {"character": 0.0, "background": 0.0}
    base = run(composer, "base", zero)
    for strategy in ("merge", "fused", "switch", "composite"):
        assert np.abs(run(composer, strategy, zero) - base).max() < TOL, strategy


def test_fused_equals_merge_with_two_loras(composer):
    weights = {"character": 1.0, "background": 0.8}
    merged = run(composer, "merge", weights)
    assert np.abs(run(composer, "fused", weights) - merged).max() < TOL
    assert np.abs(run(composer, "base", weights) - merged).max() > 1e-3
    # fused is undone afterwards: merge again gives the same image
    assert np.abs(run(composer, "merge", weights) - merged).max() < TOL


def test_switch_that_never_switches_is_the_first_lora_alone(composer):
    weights = {"character": 1.0, "background": 0.8}
    never_switch = dataclasses.replace(SETTINGS, switch_every=100)
    never = composer.generate("switch", Request("marco", weights), never_switch, 0)
    first = composer.generate("solo", Request("marco", {"character": 1.0}), SETTINGS, 0)
    assert np.abs(never - first).max() < TOL
    rotating = run(composer, "switch", weights, "marco")
    assert np.abs(rotating - first).max() > 1e-4


def test_composite_of_a_lora_with_itself_is_that_lora(base, loras):
    twin = Composer(base, {"a": loras["character"], "b": loras["character"]})
    both = twin.generate("composite", Request("marco", {"a": 0.7, "b": 0.7}), SETTINGS, 0)
    alone = twin.generate("solo", Request("marco", {"a": 0.7}), SETTINGS, 0)
    assert np.abs(both - alone).max() < TOL


def test_a1111_tags_set_weights_and_unknown_names_are_errors():
    defaults = {"character": 1.0, "background": 0.8}
    r = parse_prompt("marco <lora:character:0.6> on the beach <lora:background:0.75>", defaults)
    assert r.prompt == "marco on the beach" and r.weights == {"character": 0.6, "background": 0.75}
    with pytest.raises(ValueError, match=r"\['pose'\] that are not loaded; loaded: \['background', 'charac"):
        parse_prompt("<lora:pose:0.7> running", defaults)
    with pytest.raises(ValueError, match=r"Weight 2.5 of LoRA 'character' is outside \[-2.0, 2.0\]"):
        parse_prompt("<lora:character:2.5>", {"character": 1.0})
    triggers = {"character": "marco", "background": "beach"}
    filled = fill_template("{character} {pose} in {background}, pixar style", triggers)
    assert filled == "marco in beach, pixar style"


def test_an_extra_lora_for_another_architecture_names_the_file_and_module(base, tmp_path):
    module = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"  # SDXL's naming
    sdxl = {
        f"{module}.lora_down.weight": torch.zeros(4, 640),
        f"{module}.lora_up.weight": torch.zeros(640, 4),
        f"{module}.alpha": torch.tensor(4.0),
    }
    save_file(sdxl, str(tmp_path / "sdxl_style.safetensors"))
    lora_set = gather({}, LoraInputFolderDataset(str(tmp_path)).load(), {})
    with pytest.raises(
        ValueError,
        match=r"sdxl_style\.safetensors \(extra_loras\)' does not fit.*"
        r"'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q'",
    ):
        Composer(base, lora_set.loras, lora_set.sources)
    with pytest.raises(FileNotFoundError, match="LoRA file not found: '/no/lora.safetensors'"):
        read_lora("/no/lora.safetensors")


def test_a_long_prompt_is_truncated_with_a_warning(caplog, base):
    with caplog.at_level(logging.WARNING):
        build_requests(
            ["marco " + "very " * 100], [], {"character": 1.0}, {"character": "marco"}, base.tokenizer
        )
    assert "tokens; CLIP reads 77, the rest is truncated" in caplog.text


def test_schedulers_and_clip_t_need_what_they_name(composer):
    composer.use_scheduler("euler")
    assert type(composer.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    composer.use_scheduler("ddim")
    with pytest.raises(ValueError, match="Unknown scheduler 'plms'; choose one of ddim, euler, euler_a, dpm"):
        composer.use_scheduler("plms")
    from animation_lora.composition.scoring import ClipScore

    with pytest.raises(FileNotFoundError, match=r"composition\.scoring\.clip_checkpoint.*'/no/clip\.bin'"):
        ClipScore("/no/clip.bin", "ViT-B-32")


def test_a_kohya_lora_in_the_extra_loras_folder_is_composed(base, loras, tmp_path):
    twin = loras["character"]
    save_file(twin.tensors, str(tmp_path / "twin.safetensors"), metadata=twin.metadata)
    params = yaml.safe_load(BASE_PARAMETERS.read_text())["composition"]
    params.update(num_samples=1, strategies=["base", "solo"], weights={"background": 0.8, "twin": 0.9})
    params["sampling"].update(steps=4)
    extra = LoraInputFolderDataset(str(tmp_path)).load()
    lora_set = gather_loras(extra, composition(params), **trained(loras["character"], loras["background"]))
    assert lora_set.weights == {"character": 1.0, "background": 0.8, "twin": 0.9}
    assert lora_set.sources["twin"] == "twin.safetensors (extra_loras)"
    assert lora_set.triggers["twin"] == "marco"
    images, table = generate_compositions(lora_set, composition(params), TINY)
    assert list(table.strategy) == ["base", "solo:character", "solo:background", "solo:twin"]
    twin_alone = images[table.image_id[table.strategy == "solo:twin"].item()]
    base_image = images[table.image_id[table.strategy == "base"].item()]
    assert np.abs(twin_alone.astype(int) - base_image).max() > 0  # the extra LoRA does something


def trained(character, background, characters=None, pose=None, expression=None):
    """`gather_loras`' LoRAs per type; a type without a LoRA holds one that was not trained, as training
    writes it for a dataset with nothing to teach."""
    missing = {kind: LoraFile.not_trained(kind, "no instance had a detectable pose")
               for kind in ("pose", "expression")}
    main = {"character": character, "background": background, **missing,
            **{k: v for k, v in {"pose": pose, "expression": expression}.items() if v is not None}}
    return {**main, **{f"{kind}_by_name": {} for kind in main}, "character_by_name": characters or {}}


def test_composition_picks_trained_loras_by_name(loras):
    """One LoRA per selected character: `composition.loras` picks the one for a slot (default: the main)."""
    params = yaml.safe_load(BASE_PARAMETERS.read_text())["composition"]
    nina = loras["background"]  # any other trained LoRA stands in for a second character
    characters = {"marco": loras["character"], "nina": nina}
    both = trained(loras["character"], loras["background"], characters)
    picked = gather_loras({}, composition({**params, "loras": {"character": "nina"}}), **both)
    assert picked.loras["character"] is nina and picked.loras["background"] is loras["background"]
    default = gather_loras({}, composition(params), **both)
    assert default.loras["character"] is loras["character"]
    with pytest.raises(ValueError, match=r"`composition.loras.character` is 'luca'.*\['marco', 'nina'\]"):
        gather_loras({}, composition({**params, "loras": {"character": "luca"}}), **both)
    with pytest.raises(ValueError, match=r"`composition.loras` names slot\(s\) \['lighting'\]"):
        gather_loras({}, composition({**params, "loras": {"lighting": "sunset"}}), **both)


def test_the_four_lora_prompt_and_weights_and_a_type_with_nothing_to_teach(loras, base):
    """The brief's case: character 1.0, background 0.8, pose 0.7, expression 0.6, the demo's prompt
    `[character], full body, [pose], [expression], [background]` (the demo base's caption words); a type whose
    dataset had nothing to teach is left out with its reason (its default weight is then no error) and the
    prompt goes on without it, leaving no empty comma."""
    params = yaml.safe_load(BASE_PARAMETERS.read_text())["composition"]
    running = LoraFile(loras["background"].tensors, {"modelspec.trigger_phrase": "running pose"})
    happy = LoraFile(loras["background"].tensors, {"modelspec.trigger_phrase": "happy expression"})
    four = gather_loras({}, composition(params), **trained(loras["character"], loras["background"],
                                                           pose=running, expression=happy))
    assert four.weights == {"character": 1.0, "background": 0.8, "pose": 0.7, "expression": 0.6}
    prompt = build_requests([], params["templates"], four.weights, four.triggers, base.tokenizer)[0].prompt
    words = [four.triggers[k] for k in ("character", "pose", "expression", "background")]
    assert prompt == f"{words[0]}, full body, {words[1]}, {words[2]}, {words[3]}"
    three = gather_loras({}, composition(params), **trained(loras["character"], loras["background"],
                                                            expression=happy))
    assert sorted(three.loras) == ["background", "character", "expression"]
    assert three.absent == {"pose": "no instance had a detectable pose"}
    prompt = build_requests([], params["templates"], three.weights, three.triggers, base.tokenizer)[0].prompt
    assert prompt == f"{words[0]}, full body, happy expression, {words[3]}"


def weight_bytes(model) -> dict[str, bytes]:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def test_the_composer_shares_the_base_and_leaves_it_bit_identical(base, loras):
    """No second U-Net: the composer's layers hold the base's own tensors; `fused` writes them in place and
    puts the exact bits back, between settings, at the end of a `with` block, and after an exception."""
    before_unet, before_text = weight_bytes(base.unet), weight_bytes(base.text_encoder)
    request = Request("marco in scene_0", {"character": 0.9, "background": 0.7})
    with Composer(base, loras) as composer:
        shared = composer.pipe.unet.conv_in.weight  # a layer no LoRA touches
        assert shared.data_ptr() == base.unet.conv_in.weight.data_ptr()
        for strategy in ("merge", "fused", "switch", "composite", "fused"):
            composer.generate(strategy, request, SETTINGS, seed=0)
        assert weight_bytes(base.unet) != before_unet  # fused now: the base's own weights carry the LoRAs
    assert weight_bytes(base.unet) == before_unet and weight_bytes(base.text_encoder) == before_text
    bad = dataclasses.replace(SETTINGS, height=60)  # not a multiple of 8: diffusers refuses it, fused
    with pytest.raises(ValueError, match="divisible by 8"):
        with Composer(base, loras) as composer:
            composer.generate("fused", request, SETTINGS, seed=0)
            composer.generate("fused", request, bad, seed=0)
    assert weight_bytes(base.unet) == before_unet and weight_bytes(base.text_encoder) == before_text
    one_off = Composer(base, loras).generate("fused", request, SETTINGS, seed=0)  # outside `with`: unfused
    assert weight_bytes(base.unet) == before_unet
    with Composer(base, loras) as composer:
        assert np.array_equal(composer.generate("fused", request, SETTINGS, seed=0), one_off)

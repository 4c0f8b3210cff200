"""The shared LoRA dataset builder and its kohya folder + TOML, checked against sd-scripts' dataset
config schema (library/config_util.py: keys and types of [general], [[datasets]], [[datasets.subsets]])."""

import tomllib

import numpy as np
import pytest
from kedro.io import Version

from animation_lora.backends.captioning import TemplateCaptioner, join_caption
from animation_lora.datasets import KohyaDatasetFolder
from animation_lora.lora_dataset import build_lora_dataset, select_images

# sd-scripts ConfigSanitizer, DreamBooth-style subsets with caption dropout support (facts, re-typed here)
SUBSET_KEYS = {
    "color_aug": bool,
    "face_crop_aug_range": list,
    "flip_aug": bool,
    "alpha_mask": bool,  # sd-scripts >= 0.8.7: the alpha channel is the loss mask (with --masked_loss)
    "num_repeats": int,
    "random_crop": bool,
    "shuffle_caption": bool,
    "keep_tokens": int,
    "keep_tokens_separator": str,
    "secondary_separator": str,
    "enable_wildcard": bool,
    "token_warmup_min": int,
    "token_warmup_step": (int, float),
    "caption_prefix": str,
    "caption_suffix": str,
    "caption_dropout_every_n_epochs": int,
    "caption_dropout_rate": (int, float),
    "caption_tag_dropout_rate": (int, float),
    "caption_extension": str,
    "class_tokens": str,
    "cache_info": bool,
    "image_dir": str,
    "is_reg": bool,
}
DATASET_KEYS = {
    "batch_size": int,
    "bucket_no_upscale": bool,
    "bucket_reso_steps": int,
    "enable_bucket": bool,
    "max_bucket_reso": int,
    "min_bucket_reso": int,
    "resolution": (int, list),
    "network_multiplier": float,
}
GENERAL_KEYS = {**DATASET_KEYS, **{k: v for k, v in SUBSET_KEYS.items() if k not in ("image_dir", "is_reg")}}


def check_kohya_schema(config: dict):
    assert set(config) <= {"general", "datasets"}
    for key, value in config.get("general", {}).items():
        assert key in GENERAL_KEYS and isinstance(value, GENERAL_KEYS[key]), key
    for dataset in config["datasets"]:
        for key, value in dataset.items():
            if key == "subsets":
                continue
            allowed = {**DATASET_KEYS, **GENERAL_KEYS}
            assert key in allowed and isinstance(value, allowed[key]), key
            assert not isinstance(value, bool) or allowed[key] is bool, key  # bool is an int in Python
        for subset in dataset["subsets"]:
            assert "image_dir" in subset
            for key, value in subset.items():
                assert key in SUBSET_KEYS and isinstance(value, SUBSET_KEYS[key]), key
                assert not isinstance(value, bool) or SUBSET_KEYS[key] is bool, key


def test_the_schema_check_catches_what_sd_scripts_refuses():
    with pytest.raises(AssertionError):
        check_kohya_schema({"datasets": [{"subsets": [{"image_dir": "x", "caption_ext": ".txt"}]}]})
    with pytest.raises(AssertionError):
        check_kohya_schema({"datasets": [{"subsets": [{"image_dir": "x", "keep_tokens": "3"}]}]})


PARAMS = {
    "target_size": 4,
    "resolution": 256,
    "batch_size": 1,
    "shuffle_caption": True,
    "keep_tokens": 3,
    "color_aug": False,
    "flip_aug": False,
}


def test_selection_takes_the_sharpest_then_the_most_different():
    vectors = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99], [-1, 0], [0.7, 0.7]], float)
    quality = np.array([5, 9, 1, 2, 3, 4], float)
    chosen, repeats, note = select_images(list("abcdef"), quality, vectors, 3)
    assert repeats == 1 and "b" in chosen and "e" in chosen and len(chosen) == 3
    assert "a" not in chosen  # a near-duplicate of the sharper b
    chosen, repeats, note = select_images(list("abc"), quality[:3], vectors[:3], 10)
    assert chosen == list("abc") and repeats == 4 and "num_repeats=4" in note


def test_kohya_folder_round_trip_and_toml(tmp_path):
    images = {f"img{k}": np.full((40, 30, 3), 20 * k, np.uint8) for k in range(3)}
    captions = {
        k: join_caption("marco", "3d animated character, pixar style", ["standing"], []) for k in images
    }
    ds = build_lora_dataset("character_0", "marco", images, captions, {k: 1.0 for k in images}, None, PARAMS)
    assert ds.toml["datasets"][0]["subsets"][0]["num_repeats"] == 2  # 3 images for a target of 4
    assert ds.report.note.iloc[0].startswith("only 3 images")
    folder = KohyaDatasetFolder(str(tmp_path / "character_lora"), version=Version(None, None))
    folder.save(ds)
    (version,) = [p for p in (tmp_path / "character_lora").iterdir()]
    root = version / "character_lora"
    config = tomllib.loads((root / "dataset.toml").read_text())
    check_kohya_schema(config)
    subset = config["datasets"][0]["subsets"][0]
    assert subset["image_dir"] == str((root / "images").resolve())
    assert (
        subset["caption_extension"] == ".txt"
        and subset["keep_tokens"] == 3
        and subset["shuffle_caption"] is True
    )
    assert config["datasets"][0]["min_bucket_reso"] <= 64  # low-resolution sets need it below sd-scripts' 256
    for k in images:
        assert (root / "images" / f"{k}.png").exists()
        assert (
            root / "images" / f"{k}.txt"
        ).read_text().strip() == "marco, 3d animated character, pixar style, standing"
    loaded = folder.load()  # the LoRA's own name, not the folder's (it lands in ss_output_name)
    assert (loaded.name, loaded.trigger) == ("character_0", "marco") and sorted(loaded.images) == sorted(
        images
    )
    assert loaded.captions == ds.captions and loaded.toml["datasets"][0]["resolution"] == 256
    assert loaded.images["img2"]().tolist() == images["img2"].tolist()


def test_captions_start_with_trigger_and_prefix_and_never_say_excluded_words():
    cap = TemplateCaptioner()(
        [None, None],
        [{"scene": "beach", "who": "marco waving"}, {"scene": "room"}],
        "beach_bg",
        "3d animated background, pixar style",
        exclude=["marco"],
    )
    assert cap[0] == "beach_bg, 3d animated background, pixar style, beach"
    assert cap[1] == "beach_bg, 3d animated background, pixar style, room"
    assert [t.strip() for t in cap[0].split(",")][:3] == ["beach_bg", "3d animated background", "pixar style"]


def test_round_trip_keeps_a_trigger_with_quotes_and_commas(tmp_path):
    images = {"a": np.zeros((8, 8, 3), np.uint8)}
    trigger = "nina's 'red' coat, v2"
    ds = build_lora_dataset("scene_1", trigger, images, {"a": trigger}, {"a": 1.0}, None, PARAMS)
    folder = KohyaDatasetFolder(str(tmp_path / "background_lora"), version=Version(None, None))
    folder.save(ds)
    loaded = folder.load()
    assert (loaded.name, loaded.trigger, loaded.captions) == ("scene_1", trigger, {"a": trigger})


@pytest.mark.parametrize("extra, message", [
    ({"keep_tokens": "3"}, r"`dataset.keep_tokens`: Input should be a valid integer"),
    ({"caption_ext": ".txt"}, r"`dataset.caption_ext`: unknown key; known keys: .*caption_prefix"),
])
def test_dataset_params_are_typed_and_name_the_key(extra, message):
    image = {"a": np.zeros((8, 8, 3), np.uint8)}
    with pytest.raises(ValueError, match=message):
        build_lora_dataset("x", "x", image, {"a": "x"}, {}, None, {**PARAMS, **extra})


def test_captions_repeat_no_tag_even_spelled_differently():
    facts = [{"scene": "scene_0", "view": "wide shot"}]
    cap = TemplateCaptioner()([None], facts, "scene_0", "background", [])
    assert cap == ["scene_0, background, wide shot"]


def test_a_type_with_nothing_to_teach_round_trips_and_trains_no_lora(tmp_path):
    """A film whose characters have no human pose still completes: the empty dataset is written with its
    reason, read back with it, and training returns a LoRA without weights that says why."""
    from animation_lora.lora_dataset import nothing_to_teach
    from animation_lora.params import parse
    from animation_lora.pipelines.training.nodes import train
    from animation_lora.pipelines.training.parameters import Training

    folder = KohyaDatasetFolder(str(tmp_path / "pose_lora"), version=Version(None, None))
    folder.save(nothing_to_teach("pose", "none of 12 instances had a detectable pose"))
    back = folder.load()
    assert back.skipped == "none of 12 instances had a detectable pose" and back.images == {}
    params = {"args": {}, "sample_prompts": [], "sampling": {"steps": 1, "size": 64}}
    out = train(back, {}, parse(Training, params, "training"), {"backend": "tiny"})
    lora, epochs, history = out["lora"], out["lora_epochs"], out["training_history"]
    assert lora.tensors == {} and lora.skipped == back.skipped and epochs == {} and history.empty


def test_character_captions_gain_the_action_and_expression_of_their_instance():
    """So the character trigger binds to identity: each caption names what varies (view, action, expression:
    issue 12); an unlabeled action or a left-out face adds nothing, and a tag already in the caption is not
    repeated."""
    import pandas as pd

    from animation_lora.pipelines.training.character_words import tag_character_datasets

    images = {f"f{k:06d}_0": np.full((40, 30, 3), 20 * k, np.uint8) for k in range(3)}
    captions = {k: join_caption("marco", "character", ["full body"], []) for k in images}
    ds = build_lora_dataset("marco", "marco", images, captions, {k: 1.0 for k in images}, None, PARAMS)
    actions = pd.DataFrame({"instance_id": list(images), "action": ["running", "unlabeled", "standing"],
                            "facing": ["facing left", "", "facing the camera"]})
    expressions = pd.DataFrame({"instance_id": list(images), "expression": ["happy", "", "full body"]})
    tagged = tag_character_datasets(ds, {"marco": ds}, actions, expressions)
    main, each = tagged["tagged_dataset"], tagged["tagged_datasets"]
    assert main.captions == {
        "f000000_0": "marco, character, full body, facing left, running, happy",
        "f000001_0": "marco, character, full body",
        "f000002_0": "marco, character, full body, facing the camera, standing",
    }
    assert each["marco"].captions == main.captions
    assert ds.captions["f000000_0"] == "marco, character, full body"  # the preprocessing dataset is unchanged
    assert list(main.report.caption) == [main.captions[i] for i in main.report.id]


def test_captions_keep_no_control_characters_or_undecodable_bytes():
    """A VLM's sentence can hold U+FFFD (bytes that decoded to nothing) and control characters: kohya would
    write them into the caption file; white space (a newline too) becomes one space."""
    sentence = "a boy\x00 runs\ufffd\nby the\u200b sea\t"
    assert join_caption("marco", "character", [sentence], []) == "marco, character, a boy runs by the sea"

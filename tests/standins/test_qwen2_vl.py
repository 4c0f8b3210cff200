"""The Qwen2-VL stand-in: a folder the studio captioner loads and runs, laid out as the real download."""

from __future__ import annotations

import json

import numpy as np
import pytest

from animation_lora.standins import qwen2_vl

MESSAGES = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this."}]}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("standins") / "qwen2_vl"
    assert qwen2_vl.write(path) == {"captioning": {"qwen2_vl": {"model_path": str(path)}}}
    return path


def test_studio_captioner_captions_with_it(folder):
    from animation_lora.backends.captioning import Qwen2VLCaptioner

    captioner = Qwen2VLCaptioner(model_path=str(folder), device="cpu", max_new_tokens=5)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(48, 64, 3), (40, 40, 4)]]  # RGB+A
    captions = captioner(images, [{}, {}], trigger="mytrigger", prefix="3d render", exclude=[])
    assert len(captions) == 2
    assert all(isinstance(c, str) and c.startswith("mytrigger, 3d render") for c in captions)


def test_folder_is_laid_out_as_the_download(folder):
    from transformers import AutoProcessor

    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "preprocessor_config.json"} <= names
    assert names & {"chat_template.jinja", "chat_template.json"} or "chat_template" in json.loads(
        (folder / "tokenizer_config.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2_vl"

    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    tok = processor.tokenizer
    for name in ["image_pad", "video_pad", "vision_start", "vision_end"]:  # config ids = tokenizer ids
        key = name.replace("_pad", "") + "_token_id"
        assert tok.convert_tokens_to_ids(f"<|{name}|>") == config[key]
    assert config["text_config"]["vocab_size"] == len(tok)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"

    text = processor.apply_chat_template(MESSAGES, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>Describe this.<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_image_pad_becomes_one_token_per_merged_patch(folder):
    from PIL import Image
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    image_token_id = json.loads((folder / "config.json").read_text())["image_token_id"]
    text = processor.apply_chat_template(MESSAGES, add_generation_prompt=True)
    picture = Image.fromarray(np.zeros((384, 512, 3), np.uint8))
    inputs = processor(text=[text], images=[picture], return_tensors="pt")
    # 384x512 shrinks under the 112*112 pixel cap to 84x112: 6x8 patches of 14, merged 2x2 into 12 tokens
    assert inputs["image_grid_thw"].tolist() == [[1, 6, 8]]
    assert inputs["pixel_values"].shape[0] == 6 * 8
    assert int((inputs["input_ids"] == image_token_id).sum()) == 1 * 6 * 8 // 2**2


def test_same_seed_same_weights(tmp_path):
    qwen2_vl.write(tmp_path / "a", seed=3)
    qwen2_vl.write(tmp_path / "b", seed=3)
    qwen2_vl.write(tmp_path / "c", seed=4)
    weights = [(tmp_path / d / "model.safetensors").read_bytes() for d in "abc"]
    assert weights[0] == weights[1] != weights[2]

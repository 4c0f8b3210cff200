"""kohya's names: the module names a base model offers, shared with the export's key naming."""

import pytest
import torch

from animation_lora.backends.diffusion import make_base_model
from animation_lora.lora_format import kohya_name, module_names, text_model_path, to_kohya


@pytest.fixture(scope="module")
def base():
    return make_base_model({"backend": "tiny", "tiny": {"seed": 0}})


def test_module_names_cover_every_linear_and_conv_in_kohya_naming(base):
    names = module_names(base)
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q" in names
    assert "lora_unet_conv_in" in names  # a Conv2d
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj" in names  # the transformers-4 spelling
    te_paths = [p for p, m in base.text_encoder.named_modules() if isinstance(m, torch.nn.Linear)]
    assert {kohya_name("lora_te_", p) for p in te_paths} <= names  # and as the model names it
    unet = [p for p, m in base.unet.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(names) == len(unet) + len(
        {kohya_name("lora_te_", q) for p in te_paths for q in (p, text_model_path(p))}
    )


def test_every_exported_module_is_a_module_of_the_base(base):
    from peft import LoraConfig, inject_adapter_in_model

    from animation_lora.backends.factory import private_copy

    unet, text = private_copy(base.unet), private_copy(base.text_encoder)
    unet.add_adapter(LoraConfig(r=2, target_modules=["to_q", "proj_in"]))
    inject_adapter_in_model(LoraConfig(r=2, target_modules=["q_proj"]), text)
    exported = {k.split(".")[0] for k in to_kohya(unet, text)}
    assert exported and exported <= module_names(base)
    assert any(k.startswith("lora_te_text_model_") for k in exported)

"""SD 1.x's CLIP text encoder rebuilt from an LDM single-file checkpoint (diffusers would fetch its config
from a hub): the config derived from the tensor shapes."""

from __future__ import annotations

from pathlib import Path


def text_encoder_from_single_file(path: Path):
    """The CLIP text encoder inside an LDM checkpoint (`cond_stage_model.transformer.text_model.*`), its
    config derived from the tensor shapes (OpenAI CLIP: quick-GELU, 64-wide heads)."""
    from safetensors import safe_open
    from transformers import CLIPTextConfig, CLIPTextModel

    prefix = "cond_stage_model.transformer.text_model."
    with safe_open(str(path), framework="pt") as f:
        state = {k[len(prefix) :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    if not state:
        raise ValueError(f"'{path}' has no SD 1.x text encoder ({prefix}…): is it an SD 1.5 checkpoint?")
    hidden = state["embeddings.token_embedding.weight"].shape[1]
    layers = len({k.split(".")[2] for k in state if k.startswith("encoder.layers.")})
    config = CLIPTextConfig(
        vocab_size=state["embeddings.token_embedding.weight"].shape[0],
        hidden_size=hidden,
        intermediate_size=state["encoder.layers.0.mlp.fc1.weight"].shape[0],
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        max_position_embeddings=state["embeddings.position_embedding.weight"].shape[0],
        hidden_act="quick_gelu",
        projection_dim=hidden,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )
    model = CLIPTextModel(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or [k for k in unexpected if not k.endswith("position_ids")]:
        raise ValueError(
            f"Text encoder of '{path}' does not match CLIP's layout: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    return model.eval()

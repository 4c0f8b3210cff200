"""A stand-in for an OpenCLIP checkpoint in the form the hub's open_clip repositories have (e.g.
laion/CLIP-ViT-B-32-laion2B-s34B-b79K): a folder with `open_clip_config.json` (the model and preprocessing
configuration) and `open_clip_model.safetensors`. ViT-B-32's shape at a tiny width, CLIP's vocabulary and
context; seeded random weights. `embedding.clip.checkpoint` and `composition.scoring.clip_checkpoint` take
the folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch

MODEL_CFG = {  # ViT-B-32: embed 512; vision 12 layers x 768 wide; text 12 layers x 512 wide, 8 heads
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
}
PREPROCESS_CFG = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


def write(folder: Path, seed: int = 0) -> dict:
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / "open_clip_model.safetensors"))
    return {"embedding": {"clip": {"checkpoint": str(folder)}},
            "composition": {"scoring": {"clip_checkpoint": str(folder)}}}

"""A stand-in for a SAM 2.1 checkpoint: the bundled `sam2.1_hiera_t.yaml` model (the smallest SAM 2.1, 39 M
parameters) with seeded random weights, saved as Meta's `.pt` files are (`{"model": state_dict}`, which sam2
loads with `weights_only=True`). Its masks are random; the point is that the video predictor, its prompts
and its propagation run."""

from __future__ import annotations

from pathlib import Path

import torch

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"  # bundled with the sam2 package


def write(folder: Path, seed: int = 0) -> dict:
    from sam2.build_sam import build_sam2_video_predictor

    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_sam2_video_predictor(CONFIG, ckpt_path=None, device="cpu")
    path = folder / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return {"segmentation": {"sam2": {"checkpoint": str(path), "config": CONFIG}}}

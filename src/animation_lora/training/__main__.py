"""Train one LoRA from a kohya dataset folder, without Kedro; `accelerate launch` runs it data-parallel:

    python -m animation_lora.training --dataset <kohya folder> --config <yaml> --output <lora.safetensors>
    accelerate launch --num_processes 2 -m animation_lora.training --dataset … --config … --output …

The folder holds `dataset.toml` (its subset's `image_dir`, else `images/`) and images with caption files
(`caption_extension`); `lora.json` (written by the project) names the LoRA and its trigger, else the folder's
name and the first caption tag. The YAML: `args` (kohya's names, `training.args`) and `diffusion` (the base
model, as in conf: `{backend: sd15, sd15: {path: …, dtype: float16}}`; default the tiny model). Rank 0 alone
writes the LoRA (kohya keys + ss_* metadata) and the loss history (`<output>.history.csv`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import tomllib
from functools import partial
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from ..lora_dataset import TrainingSet

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def read_kohya_folder(folder: Path) -> TrainingSet:
    """A kohya dataset folder as a `TrainingSet` (a missing TOML or image folder is an error naming it)."""
    toml_path = folder / "dataset.toml"
    if not toml_path.exists():
        raise FileNotFoundError(f"No kohya dataset at '{folder}': '{toml_path.name}' is missing")
    toml = tomllib.loads(toml_path.read_text())
    subset = toml["datasets"][0]["subsets"][0]
    image_dir = Path(subset.get("image_dir") or folder / "images")
    if not image_dir.is_dir():
        image_dir = folder / "images"  # the folder was moved since the TOML was written
    if not image_dir.is_dir():
        raise FileNotFoundError(f"Kohya dataset '{folder}': no image folder '{image_dir}'")
    extension = subset.get("caption_extension", toml.get("general", {}).get("caption_extension", ".caption"))
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    captions = {}
    for p in images:
        caption = p.with_suffix(extension)
        captions[p.stem] = caption.read_text(encoding="utf-8").strip() if caption.exists() else ""
    identity_file = folder / "lora.json"
    if identity_file.exists():
        identity = json.loads(identity_file.read_text())
    else:
        first = next((c for c in captions.values() if c), folder.name)
        identity = {"name": folder.name, "trigger": first.split(",")[0].strip()}
    return TrainingSet(
        identity["name"],
        identity["trigger"],
        {p.stem: partial(_read, p) for p in images},
        captions,
        toml,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser("python -m animation_lora.training", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, type=Path, help="a kohya dataset folder")
    parser.add_argument("--config", required=True, type=Path, help="YAML with `args` and `diffusion`")
    parser.add_argument("--output", required=True, type=Path, help="the LoRA .safetensors to write")
    parser.add_argument(
        "--rank-histories", action="store_true", help="every process also writes <output>.rank<r>.csv"
    )
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from safetensors.torch import save_file

    from ..backends.diffusion import make_base_model
    from ..lora_format import describe, to_kohya
    from .config import TrainConfig
    from .trainer import train_lora

    config = yaml.safe_load(ns.config.read_text()) or {}
    unknown = sorted(set(config) - {"args", "diffusion"})
    if unknown:
        raise ValueError(f"'{ns.config}': unknown key '{unknown[0]}'; known keys: args, diffusion")
    cfg = TrainConfig.from_params(config.get("args") or {})
    base = make_base_model(config.get("diffusion") or {"backend": "tiny", "tiny": {"seed": 0}})
    dataset = read_kohya_folder(ns.dataset)
    result = train_lora(base, dataset, cfg)
    rank = int(os.environ.get("RANK", "0"))
    if ns.rank_histories:  # to check that the processes agree (tests)
        result.history.to_csv(ns.output.with_suffix(f".rank{rank}.csv"), index=False)
    if rank == 0:  # rank 0 alone writes the LoRA
        with_te = cfg.trains_text_encoder
        tensors = to_kohya(
            result.unet, result.text_encoder if with_te else None, cfg.network_alpha, cfg.save_precision,
            base.architecture,
        )
        ns.output.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous().cpu() for k, v in tensors.items()},
            str(ns.output),
            describe(result, dataset, base),
        )
        result.history.to_csv(ns.output.with_suffix(".history.csv"), index=False)
        print(f"Wrote {ns.output} ({result.steps} steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

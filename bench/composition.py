"""Latency per image of base, merge (unfused adapters), fused, switch and composite with 1-4 LoRAs on the
tiny SD-shaped model, in one run, against the named baseline: the base pipeline with no LoRA loaded.
Goal: fused with 4 LoRAs <= 1.05x base; switch ~ 1.0x merge with one LoRA; composite ~ N x.

    .venv/bin/python bench/composition.py [--repeats 5] [--steps 20]
"""

import argparse
import json
import time
from functools import partial

import torch

from animation_lora.backends.diffusion import make_base_model
from animation_lora.composition import Composer, Request
from animation_lora.composition.parameters import Sampling
from animation_lora.lora_format import LoraFile
from animation_lora.training import UNET_TARGETS


def random_lora(base, seed: int, rank: int = 4) -> LoraFile:
    """A kohya-format LoRA with random weights on every targeted U-Net layer (latency does not depend on
    what a LoRA learnt)."""
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for path, module in base.unet.named_modules():
        if isinstance(module, torch.nn.Linear) and any(path.endswith(t) for t in UNET_TARGETS):
            name = "lora_unet_" + path.replace(".", "_")
            tensors[f"{name}.lora_down.weight"] = torch.randn(rank, module.in_features, generator=gen) * 0.01
            tensors[f"{name}.lora_up.weight"] = torch.randn(module.out_features, rank, generator=gen) * 0.01
            tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    return LoraFile(tensors, {})


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0}})
    settings = Sampling(steps=args.steps, guidance_scale=7.5, height=64, width=64, switch_every=5)
    plain = Composer(base, {})
    baseline = timed(lambda: plain.generate("base", Request("marco", {}), settings, 0), args.repeats)
    table = {"baseline: base pipeline, no LoRA loaded (s/image)": round(baseline, 4)}
    for n in (1, 2, 3, 4):
        loras = {f"l{i}": random_lora(base, i) for i in range(n)}
        composer = Composer(base, loras)
        request = Request("marco", {name: 0.8 for name in loras})
        row = {}
        for strategy in ("base", "merge", "fused", "switch", "composite"):
            seconds = timed(partial(composer.generate, strategy, request, settings, 0), args.repeats)
            row[strategy] = {"s_per_image": round(seconds, 4), "x_baseline": round(seconds / baseline, 3)}
        table[f"{n} LoRA(s)"] = row
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()

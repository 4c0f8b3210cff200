"""Composition against the named baseline, the base pipeline with no LoRA loaded, in one run:

- latency per image of base, merge (unfused adapters), fused, switch and composite with 1-4 LoRAs on the tiny
  SD-shaped model. Goal: fused with 4 LoRAs <= 1.05x base; switch ~ 1.0x merge with one LoRA; composite ~ N x.
- peak memory (the process's peak RSS; each case in a fresh process) on the SD-1.5 architecture (random
  weights, `scale.sd15_random`) at 64 px: the base pipeline generating alone, and a composer with 4 LoRAs
  running merge, fused, switch and composite; for reference, the composer on private copies of the U-Net
  and text encoder (what it did before it shared the base). Goal: composition <= 1.05x the base alone.

    .venv/bin/python bench/composition.py [--repeats 5] [--steps 20] [--skip-memory]
"""

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
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


def peak_memory(case: str, steps: int) -> float:
    """Peak RSS (MB) of one case, run in a fresh process: `base`, `composer` or `private`."""
    from animation_lora.backends.factory import private_copy
    from scale import sd15_random

    base = sd15_random("cpu", "float32")
    settings = Sampling(steps=steps, guidance_scale=7.5, height=64, width=64, switch_every=2)
    if case == "base":
        pipe = base.pipeline()
        pipe.set_progress_bar_config(disable=True)
        pipe("marco", num_inference_steps=steps, height=64, width=64,
             generator=torch.Generator().manual_seed(0))
    else:
        if case == "private":  # before: the composer deep-copied the U-Net and the text encoder
            base = dataclasses.replace(base, unet=private_copy(base.unet),
                                       text_encoder=private_copy(base.text_encoder))
        loras = {f"l{i}": random_lora(base, i) for i in range(4)}
        request = Request("marco", dict.fromkeys(loras, 0.8))
        with Composer(base, loras) as composer:
            for strategy in ("merge", "fused", "switch", "composite"):
                composer.generate(strategy, request, settings, 0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_table(steps: int) -> dict[str, float]:
    def run(case):
        out = subprocess.run([sys.executable, __file__, "--memory-case", case, "--steps", str(steps)],
                             capture_output=True, text=True, check=True).stdout
        return float(out.strip().splitlines()[-1])

    base, composed, private = run("base"), run("composer"), run("private")
    return {"baseline: SD-1.5 base pipeline alone, peak RSS (MB)": round(base),
            "composer, 4 LoRAs, merge+fused+switch+composite (MB)": round(composed),
            "x_baseline (goal <= 1.05)": round(composed / base, 3),
            "reference: the composer on private copies (MB)": round(private),
            "reference x_baseline": round(private / base, 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--skip-memory", action="store_true", help="latency only")
    ap.add_argument("--memory-case", help=argparse.SUPPRESS)  # one memory case, in its own process
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.memory_case:
        print(peak_memory(args.memory_case, min(args.steps, 4)))
        return
    base = make_base_model({"backend": "tiny", "tiny": {"seed": 0}})
    settings = Sampling(steps=args.steps, guidance_scale=7.5, height=64, width=64, switch_every=5)
    with Composer(base, {}) as plain:
        baseline = timed(lambda: plain.generate("base", Request("marco", {}), settings, 0), args.repeats)
    table = {"baseline: base pipeline, no LoRA loaded (s/image)": round(baseline, 4)}
    for n in (1, 2, 3, 4):
        loras = {f"l{i}": random_lora(base, i) for i in range(n)}
        request = Request("marco", {name: 0.8 for name in loras})
        row = {}
        with Composer(base, loras) as composer:  # fused stays fused between the repeats
            for strategy in ("base", "merge", "fused", "switch", "composite"):
                seconds = timed(partial(composer.generate, strategy, request, settings, 0), args.repeats)
                row[strategy] = {"s_per_image": round(seconds, 4), "x_baseline": round(seconds / baseline, 3)}
        table[f"{n} LoRA(s)"] = row
    if not args.skip_memory:
        table["peak memory, SD-1.5 architecture at 64 px"] = memory_table(min(args.steps, 4))
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()

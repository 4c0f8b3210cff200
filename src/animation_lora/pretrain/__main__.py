"""`python -m animation_lora.pretrain`: pretrain the demo base (docs/demo_base.md)."""

from __future__ import annotations

import argparse
import logging

from ..backends.diffusion import DEMO_BASE
from . import __doc__ as DOC
from .config import CONFIGS, WORK
from .run import pretrain


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=DOC, formatter_class=formatter)
    parser.add_argument("--out", default=str(DEMO_BASE), help="the diffusers folder to write")
    parser.add_argument("--steps", type=int, help="total steps (default: the configuration's)")
    parser.add_argument("--config", default="demo", choices=sorted(CONFIGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda, mps")
    parser.add_argument("--work", help=f"checkpoint folder (default {WORK}/<config>-seed<seed>)")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0, help="processes drawing the world (GPU machines)")
    parser.add_argument("--judge-captions", type=int, default=64,
                        help="held-out world captions the world probe judges the base on (0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    options = dict(seed=args.seed, device=args.device, work=args.work, workers=args.workers,
                   judge_captions=args.judge_captions)
    print(pretrain(args.out, args.steps, args.config, checkpoint_every=args.checkpoint_every, **options))


if __name__ == "__main__":
    main()

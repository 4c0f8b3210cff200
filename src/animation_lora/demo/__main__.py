"""`python -m animation_lora.demo OUT_DIR [--preset tiny] [--seed 0]` renders the demo film."""

import argparse

from .render import render_demo_film

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out_dir")
parser.add_argument("--preset", default="default")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--width", type=int)
parser.add_argument("--height", type=int)
args = parser.parse_args()
sizes = {k: v for k, v in dict(width=args.width, height=args.height).items() if v}
print(render_demo_film(args.out_dir, preset=args.preset, seed=args.seed, **sizes))

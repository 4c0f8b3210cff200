"""Render the demo film, or draw a contact sheet of one with its ground truth.

python -m animation_lora.demo render OUT_DIR [--preset tiny] [--seed 0] [--width W --height H]
python -m animation_lora.demo sheet FILM_DIR OUT.png [--every 12]
"""

import argparse

import av
from PIL import Image

from ..imaging import contact_sheet
from .ground_truth import GroundTruth
from .render import render_demo_film


def sheet(film_dir: str, out: str, every: int) -> None:
    gt = GroundTruth(f"{film_dir}/ground_truth")
    images, captions = [], []
    with av.open(f"{film_dir}/film.mp4") as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == every // 2:
                rows = gt.instances[gt.instances.frame == i]
                images.append(frame.to_ndarray(format="rgb24"))
                captions.append(
                    " ".join(f"{r.character}:{r.action[:4]}/{r.expression[:4]}" for r in rows.itertuples())
                )
    title = f"demo film: {len(gt.frames)} frames, {gt.frames.shot.nunique()} shots (every {every}th frame)"
    Image.fromarray(contact_sheet(images, captions, thumb=256, cols=4, title=title)).save(out)


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
sub = parser.add_subparsers(dest="command", required=True)
r = sub.add_parser("render")
r.add_argument("out_dir")
r.add_argument("--preset", default="default")
r.add_argument("--seed", type=int, default=0)
r.add_argument("--width", type=int)
r.add_argument("--height", type=int)
s = sub.add_parser("sheet")
s.add_argument("film_dir")
s.add_argument("out")
s.add_argument("--every", type=int, default=12)
args = parser.parse_args()
if args.command == "render":
    sizes = {k: v for k, v in dict(width=args.width, height=args.height).items() if v}
    print(render_demo_film(args.out_dir, preset=args.preset, seed=args.seed, **sizes))
else:
    sheet(args.film_dir, args.out, args.every)

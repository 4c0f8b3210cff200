"""Clean-plate speed and quality per inpainting backend, with and without temporal fill, on the default
demo film, against a named baseline measured in the same run: OpenCV Telea without temporal fill.

Holes are the ground-truth character masks grown by 3 px (as preprocessing's hole_margin), so this
measures filling, not segmentation. Every 2nd frame of each shot, as preprocessing samples.

    .venv/bin/python bench/background.py [--film-dir data/01_raw/demo_film]
"""

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pandas as pd

from animation_lora.backends.inpainting import make_inpainter
from animation_lora.background.temporal_fill import TemporalFillParams
from animation_lora.demo import GroundTruth, render_demo_film
from animation_lora.ids import frame_id, frame_number
from animation_lora.layers.masks import hole_mask
from animation_lora.metrics import psnr_from_mse
from animation_lora.pipelines.background.nodes import temporal_fill

FILL = TemporalFillParams(enabled=True, max_neighbours=12, min_views=1, edge_margin=4, min_visible_share=0.5,
                          max_step=0.05)
BACKENDS = {
    "opencv_telea": {"backend": "opencv", "opencv": {"method": "telea"}},
    "opencv_ns": {"backend": "opencv", "opencv": {"method": "ns"}},
    "patchmatch": {"backend": "patchmatch"},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--film-dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        film = (
            Path(args.film_dir) / "film.mp4" if args.film_dir else render_demo_film(Path(tmp) / "demo_film")
        )
        gt = GroundTruth(film.parent / "ground_truth")
        with av.open(str(film)) as c:
            frames = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % 2 == 0}
        layers, holes, truths = {}, {}, {}
        for i, frame in frames.items():
            fid = frame_id(i)
            holes[fid] = hole_mask([gt.labels[i] > 0], frame.shape[:2], 3)
            layers[fid] = np.where(holes[fid][..., None], 0, frame).astype(np.uint8)
            truths[fid] = gt.plate(i)
    plates = pd.DataFrame(
        {
            "frame_id": list(layers),
            "usable": True,
            "shot": [int(gt.frames.loc[frame_number(f), "shot"]) for f in layers],
        }
    )
    results = {}
    for temporal in (False, True):
        t0 = time.perf_counter()
        filled, left, _ = temporal_fill(layers, holes, plates, replace(FILL, enabled=temporal))
        fill_s = time.perf_counter() - t0
        for name, params in BACKENDS.items():
            inpaint = make_inpainter(params)
            t0 = time.perf_counter()
            clean = {f: inpaint(filled[f], left[f]) for f in filled}
            seconds = fill_s + time.perf_counter() - t0
            sq = np.concatenate(
                [((clean[f].astype(float) - truths[f]) ** 2).mean(2)[holes[f]] for f in clean]
            )
            results[f"{name}{' + temporal fill' if temporal else ''}"] = {
                "plates_per_s": round(len(clean) / seconds, 2),
                "psnr_in_hole_db": round(psnr_from_mse(float(sq.mean())), 2),
            }
    base = results["opencv_telea"]
    for r in results.values():
        r["speed_vs_baseline"] = round(r["plates_per_s"] / base["plates_per_s"], 3)
        r["psnr_gain_db_vs_baseline"] = round(r["psnr_in_hole_db"] - base["psnr_in_hole_db"], 2)
    print(
        json.dumps(
            {"plates": len(layers), "baseline": "opencv_telea (no temporal fill)", "results": results},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

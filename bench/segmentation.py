"""Frames per second and mean instance IoU of each segmentation backend on the default demo film, against
a named baseline measured in the same run: MediaPipe selfie segmentation in one pass over the frame
(no second look at person crops, no GrabCut, no flip averaging, no body model).

SAM2 has no offline weights: with --sam2 its speed is timed on a randomly initialised sam2.1_hiera_t
(speed does not depend on the weights; its IoU is meaningless and not printed).

    .venv/bin/python bench/segmentation.py [--every 3] [--sam2] [--film-dir data/01_raw/demo_film]

Any rendered demo film folder works as --film-dir, e.g. the `creature` preset's (issue 21:
`python -m animation_lora.demo render /tmp/creature --preset creature`). `--point 6,16,54` adds the default
backend with pointed characters (`layers.pointed`): on each of those frames a box around every character
that is not a person, drawn as a user would (its true box, 4 px larger); the look it teaches finds them in the
other frames. The IoU is given per character too.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd

from animation_lora.backends.segmentation import GrabCutSegmenter, MediaPipeSegmenter, Sam2Segmenter
from animation_lora.demo import GroundTruth, render_demo_film
from animation_lora.demo.script import PEOPLE
from animation_lora.ids import frame_id
from animation_lora.layers.pointed import Pointing
from animation_lora.metrics import iou
from animation_lora.pipelines.preprocessing.layer_nodes import pointed_look


def ious(found, truth_labels):
    """{label: [best instance IoU per frame it is in]}."""
    scores = {}
    for instances, labels in zip(found, truth_labels):
        for v in np.unique(labels):
            if v:
                best = max((iou(labels == v, i.mask) for i in instances), default=0.0)
                scores.setdefault(int(v), []).append(best)
    return scores


def run(segmenter, shots, look=None):
    t0 = time.perf_counter()
    found = [segmenter.segment_shot(frames) if look is None else
             segmenter.segment_shot(frames, pointed=[list(look.find(f, 400).values()) for f in frames])
             for frames, _ in shots]
    seconds = time.perf_counter() - t0
    n = sum(len(f) for f, _ in shots)
    return [x for shot in found for x in shot], n / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=3, help="take every n-th frame of the film")
    ap.add_argument("--sam2", action="store_true")
    ap.add_argument("--film-dir", help="an already rendered default demo film folder (else one is rendered)")
    ap.add_argument("--point", help="frames to point at the characters that are not people on (6,16,54)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        film = (
            Path(args.film_dir) / "film.mp4" if args.film_dir else render_demo_film(Path(tmp) / "demo_film")
        )
        gt = GroundTruth(film.parent / "ground_truth")
        _ = gt.labels  # read before the temporary folder goes
        with av.open(str(film)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    picked = range(0, len(frames), args.every)
    shots = []
    for shot in sorted(set(gt.frames.shot)):
        idx = [i for i in picked if gt.frames.loc[i, "shot"] == shot]
        shots.append(([frames[i] for i in idx], [gt.labels[i] for i in idx]))
    truth = [lab for _, labels in shots for lab in labels]
    backends = {
        "baseline: mediapipe one pass": MediaPipeSegmenter(
            crop_scale=0, refine=False, flip_average=False, body_model=False
        ),
        "mediapipe without the body model": MediaPipeSegmenter(body_model=False),
        "mediapipe (default)": MediaPipeSegmenter(),
        "mediapipe + motion proposals": MediaPipeSegmenter(motion={}),
        "grabcut (no weights)": GrabCutSegmenter(),
    }
    looks = {}
    if args.point:
        looks["mediapipe (default) + pointed characters"] = taught_look(
            backends["mediapipe (default)"], frames, gt, [int(k) for k in args.point.split(",")])
        backends["mediapipe (default) + pointed characters"] = backends["mediapipe (default)"]
    names = {v: k for k, v in gt.meta["label_of"].items()}
    results = {}
    for name, seg in backends.items():
        found, fps = run(seg, shots, looks.get(name))
        scores = ious(found, truth)
        every = [x for v in scores.values() for x in v]
        results[name] = {"frames_per_s": round(fps, 2), "mean_instance_iou": round(float(np.mean(every)), 3),
                         "iou_by_character": {names[v]: round(float(np.mean(x)), 3)
                                              for v, x in scores.items()}}
    if args.sam2:
        from sam2.build_sam import build_sam2_video_predictor

        predictor = build_sam2_video_predictor(
            "configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=None, device="cpu"
        )
        _, fps = run(Sam2Segmenter(predictor, MediaPipeSegmenter()), shots[:2])
        results["sam2 hiera_t (random weights, speed only)"] = {"frames_per_s": round(fps, 2)}
    base = results["baseline: mediapipe one pass"]["frames_per_s"]
    for r in results.values():
        r["speed_vs_baseline"] = round(r["frames_per_s"] / base, 3)
    print(json.dumps({"frames": len(truth), "backends": results}, indent=2))


def taught_look(segmenter, frames, gt, at):
    """The look taught by boxes a user would draw around each character that is not a person on the frames
    `at` (its true box, 4 px larger), through the pipeline's own `pointed_look`; the time to teach it is not
    in the frames per second."""
    people = {v for k, v in gt.meta["label_of"].items() if k in {c.name for c in PEOPLE}}
    pointed = []
    for k in at:
        for v in set(np.unique(gt.labels[k])) - {0} - people:
            ys, xs = np.nonzero(gt.labels[k] == v)
            h, w = gt.labels[k].shape
            box = [max(int(xs.min()) - 4, 0), max(int(ys.min()) - 4, 0), min(int(xs.max()) + 4, w),
                   min(int(ys.max()) + 4, h)]
            pointed.append(Pointing(frame=k, box=box, name=f"c{v}"))
    kept = pd.DataFrame({"frame": range(len(frames)), "frame_id": [frame_id(k) for k in range(len(frames))]})
    look, _ = pointed_look(pointed, dict(zip(kept.frame_id, frames)), kept, lambda: segmenter)
    return look


if __name__ == "__main__":
    main()

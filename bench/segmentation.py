"""Frames per second and mean instance IoU of each segmentation backend on the default demo film, against
a named baseline measured in the same run: MediaPipe selfie segmentation in one pass over the frame
(no second look at person crops, no GrabCut, no flip averaging, no body model).

SAM2 has no offline weights: with --sam2 its speed is timed on a randomly initialised sam2.1_hiera_t
(speed does not depend on the weights; its IoU is meaningless and not printed).

    .venv/bin/python bench/segmentation.py [--every 3] [--sam2] [--film-dir data/01_raw/demo_film]

Any rendered demo film folder works as --film-dir, e.g. the `creature` preset's (issue 21:
`python -m animation_lora.demo render /tmp/creature --preset creature`).
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from animation_lora.backends.segmentation import GrabCutSegmenter, MediaPipeSegmenter, Sam2Segmenter
from animation_lora.demo import GroundTruth, render_demo_film
from animation_lora.metrics import iou


def mean_iou(found, truth_labels):
    scores = []
    for instances, labels in zip(found, truth_labels):
        for v in np.unique(labels):
            if v:
                scores.append(max((iou(labels == v, i.mask) for i in instances), default=0.0))
    return float(np.mean(scores))


def run(segmenter, shots):
    t0 = time.perf_counter()
    found = [segmenter.segment_shot(frames) for frames, _ in shots]
    seconds = time.perf_counter() - t0
    n = sum(len(f) for f, _ in shots)
    return [x for shot in found for x in shot], n / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=3, help="take every n-th frame of the film")
    ap.add_argument("--sam2", action="store_true")
    ap.add_argument("--film-dir", help="an already rendered default demo film folder (else one is rendered)")
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
    results = {}
    for name, seg in backends.items():
        found, fps = run(seg, shots)
        results[name] = {"frames_per_s": round(fps, 2), "mean_instance_iou": round(mean_iou(found, truth), 3)}
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


if __name__ == "__main__":
    main()

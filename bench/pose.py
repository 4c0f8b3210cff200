"""Instances per second of pose estimation, per backend, on the tiny demo film's characters, against a
named baseline measured in the same run: **MediaPipe Pose on the whole frame** (what a user would run
without instance crops: one person per call, the second character of a two-shot missed). Ours: MediaPipe
on each instance crop (padded square, upscaled to 256), and RTMPose through rtmlib on a tiny ONNX model
with RTMPose-m's input and SimCC output shapes (the runtime's cost, not a real model's accuracy).
Also prints PCK@0.1 (torso) of the two MediaPipe variants against the true joints.

    PYTHONPATH=src .venv/bin/python bench/pose.py [--repeats 2]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from animation_lora.backends.pose import MediaPipePose, RtmPose  # noqa: E402
from animation_lora.datasets import FilmDataset  # noqa: E402
from animation_lora.demo import GroundTruth, render_demo_film  # noqa: E402
from animation_lora.pose.actions import torso_length  # noqa: E402
from tests.backends.test_pose import tiny_rtmpose  # noqa: E402


def pck(found, truths) -> float:
    hits = total = 0
    for k, true in zip(found, truths):
        visible = true[:, 2] > 0
        total += int(visible.sum())
        if k is not None:
            dist = np.linalg.norm(k[:, :2] - true[:, :2], axis=1)
            hits += int((visible & (dist < 0.1 * torso_length(true[None, :, :2])[0])).sum())
    return hits / max(total, 1)


def timed(fn, items, repeats):
    start = time.perf_counter()
    for _ in range(repeats):
        out = [fn(*item) for item in items]
    return len(items) * repeats / (time.perf_counter() - start), out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        film = render_demo_film(Path(tmp) / "demo_film", preset="tiny", seed=0)
        truth = GroundTruth(film.parent / "ground_truth")
        frames = {f.index: f.image for f in FilmDataset(str(film)).load().frames()}
        rows = list(truth.instances.itertuples())
        truths = [np.asarray(r.joints, np.float32).reshape(17, 3) for r in rows]
        mp_crop, mp_full = MediaPipePose(), MediaPipePose(margin=0.0, size=max(frames[0].shape[:2]))
        rtm = RtmPose(checkpoint=str(tiny_rtmpose(Path(tmp) / "rtmpose.onnx")), device="cpu")

        def crop_of(r):
            x0, y0, x1, y1 = r.box
            return frames[r.frame][y0:y1, x0:x1], np.array([x0, y0], np.float32)

        def shifted(model):
            def run(image, offset):
                k = model(image)
                if k is not None:
                    k[:, :2] += offset
                return k
            return run

        crops = [crop_of(r) for r in rows]
        full = [(frames[r.frame], np.zeros(2, np.float32)) for r in rows]
        base_rate, base_found = timed(shifted(mp_full), full, args.repeats)
        crop_rate, crop_found = timed(shifted(mp_crop), crops, args.repeats)
        rtm_rate, _ = timed(shifted(rtm), crops, args.repeats)
    print(f"{len(rows)} instances x {args.repeats}")
    print(f"baseline mediapipe, whole frame: {base_rate:7.1f} inst/s   PCK@0.1 {pck(base_found, truths):.3f}")
    print(f"mediapipe, instance crops:       {crop_rate:7.1f} inst/s   PCK@0.1 {pck(crop_found, truths):.3f}"
          f"   ({crop_rate / base_rate:.2f}x baseline)")
    print(f"rtmpose (tiny test ONNX):        {rtm_rate:7.1f} inst/s   ({rtm_rate / base_rate:.2f}x baseline)")


if __name__ == "__main__":
    main()

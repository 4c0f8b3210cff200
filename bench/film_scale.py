"""Memory and time against film length (issue 20): a clip looped 1x, 4x and 16x, each loop a different flip
and colour (channel order) so deduplication cannot fold the copies together, run as a user runs it —
`kedro run --pipelines=preprocessing`, then `--pipelines=background`, base env, defaults — in a fresh
project. Prints, per length, the frames sampled and kept, the wall seconds and the peak RSS of each kedro
process, and the ratios against the 1x film measured in the same run.

Goals: peak RSS at 16x <= 1.3x that at 1x; seconds per sampled frame at 16x <= 1.2x that at 1x.

    .venv/bin/python bench/film_scale.py                          # the demo film at 320x180 (~12 min)
    .venv/bin/python bench/film_scale.py --source data/01_raw/clips/Megamind.avi --width 360 --height 264
    .venv/bin/python bench/film_scale.py --project 1920x1080   # seconds per node on a 1080p clip, and the
                                                               # projection to a 90-minute feature
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KEDRO = Path(sys.executable).with_name("kedro")
FLIPS = (None, 1, 0, -1)  # none, left-right, upside down, both (cv2.flip codes)
CHANNELS = ((0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1), (1, 2, 0), (2, 0, 1))


def variant(image: np.ndarray, loop: int) -> np.ndarray:
    """Loop k of the film: its own flip and channel order (24 variants: the grey picture, and so the
    perceptual hash, differs from every other loop's)."""
    flip, channels = FLIPS[loop % 4], CHANNELS[(loop // 4) % 6]
    out = image if flip is None else cv2.flip(image, flip)
    return np.ascontiguousarray(out[..., list(channels)])


def write_looped(source: list[np.ndarray], fps: float, loops: int, path: Path) -> int:
    """The source frames `loops` times over, each loop its variant, as an H.264 mp4."""
    h, w = source[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18"}
        for k in range(loops):
            for image in source:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(variant(image, k), format="rgb24")))
        container.mux(stream.encode())
    return loops * len(source)


def source_frames(path: Path | None, width: int, height: int, work: Path) -> tuple[list[np.ndarray], float]:
    from animation_lora.datasets import FilmDataset
    from animation_lora.demo import render_demo_film

    if path is None:
        path = render_demo_film(work / "source" / "demo_film", preset="default", width=width, height=height)
    film = FilmDataset(str(path)).load()
    frames = [cv2.resize(f.image, (width, height), interpolation=cv2.INTER_AREA)
              for f in film.frames() if f.image is not None]
    return frames, film.fps


def new_project(work: Path, film: Path, demo: bool = False) -> Path:
    """A fresh project in `work` running `film` (`demo`: the demo film, its ground truth beside it)."""
    project = work / "project"
    (project / "conf" / "local").mkdir(parents=True)
    (project / "src").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "conf" / "base", project / "conf" / "base")
    globals_ = f"film_path: {film}\n" + (f"demo_dir: {film.parent}\n" if demo else "")  # else: no truth
    (project / "conf" / "local" / "globals.yml").write_text(globals_)
    return project


def kedro_run(project: Path, pipeline: str, params: str = "") -> dict:
    """One `kedro run` as its own process (`params`: its `--params`): wall seconds and its peak RSS
    (os.wait4's own rusage)."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = open(project / f"{pipeline}.log", "w")
    t0 = time.perf_counter()
    command = [str(KEDRO), "run", f"--pipelines={pipeline}"] + (["--params", params] if params else [])
    child = subprocess.Popen(command, cwd=project, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    log.close()
    if child.returncode:
        raise SystemExit(f"kedro run --pipelines={pipeline} failed ({child.returncode}); see {log.name}")
    return {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def latest(project: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(sorted((project / name).iterdir())[-1])


def measure(source: list[np.ndarray], fps: float, loops: int, work: Path) -> dict:
    work.mkdir(parents=True)
    film = work / "film" / f"looped_{loops}x.mp4"
    film.parent.mkdir()
    n = write_looped(source, fps, loops, film)
    project = new_project(work, film)
    pre, bg = kedro_run(project, "preprocessing"), kedro_run(project, "background")
    index = latest(project, "data/02_intermediate/frame_index.parquet")
    sampled = int(index.phash.notna().sum())
    return {
        "loops": loops, "source_frames": n, "sampled_frames": sampled, "kept_frames": int(index.kept.sum()),
        "preprocessing": pre, "background": bg,
        "peak_rss_mb": max(pre["peak_rss_mb"], bg["peak_rss_mb"]),
        "seconds_per_sampled_frame": round((pre["seconds"] + bg["seconds"]) / sampled, 4),
    }


FEATURE = {"source": 90 * 60 * 24, "sampled": 90 * 60 * 12, "kept": 3000}  # 24 fps, every 2nd, the budget
PER_SOURCE_FRAME = {"ingest_node", "measure_frames_node", "extract_frames_node"}  # each decodes the film


def node_seconds(log: str) -> dict[str, float]:
    """Seconds per node of a `kedro run` log: from its start line to the next node's start (or the end); the
    log's clock has whole seconds."""
    stamp, events = None, []
    for line in log.splitlines():
        if m := re.match(r"\[(\d\d/\d\d/\d\d \d\d:\d\d:\d\d)\]", line):
            stamp = datetime.strptime(m.group(1), "%m/%d/%y %H:%M:%S")
        if m := re.search(r"Running node:\s+(?:\S+\.py:\d+\s+)?([a-z_]+_node)", line):
            events.append((m.group(1), stamp))
        elif "Pipeline execution completed" in line:
            events.append(("end", stamp))
    return {n: (b - a).total_seconds() for (n, a), (_, b) in zip(events, events[1:])}


def project(source: list[np.ndarray], fps: float, size: str, work: Path) -> None:
    """Run both pipelines on the clip upscaled to `size`, and project each node's seconds to a feature film:
    the decoding nodes by source frames, every other node by kept frames (the budget's 3,000)."""
    w, h = map(int, size.split("x"))
    big = [cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in source]
    result = measure(big, fps, 1, work / f"project_{size}")
    rows = []
    for pipeline in ("preprocessing", "background"):
        text = (work / f"project_{size}" / "project" / f"{pipeline}.log").read_text()
        for node, seconds in node_seconds(text).items():
            per = "source" if node in PER_SOURCE_FRAME else "kept"
            unit = seconds / result[f"{per}_frames"]
            rows.append(dict(pipeline=pipeline, node=node, seconds=seconds, per=per,
                             ms_per_frame=round(1000 * unit, 1), feature_hours=unit * FEATURE[per] / 3600))
    table = pd.DataFrame(rows)
    print(f"{size}: {result['source_frames']} source frames, {result['kept_frames']} kept; peak RSS "
          f"{result['peak_rss_mb']} MB")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"a 90-minute feature ({FEATURE['source']} frames, {FEATURE['kept']} kept): "
          f"{table.feature_hours.sum():.1f} h on this machine")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=None, help="a clip (default: the demo film)")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--loops", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--keep", type=Path, default=None, help="keep the projects here (default: a temp dir)")
    ap.add_argument("--project", metavar="WxH", help="time each node on the clip at this size, and project")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        source, fps = source_frames(args.source, args.width, args.height, work)
        if args.project:
            return project(source, fps, args.project, work)
        rows = [measure(source, fps, k, work / f"x{k}") for k in args.loops]
    base = rows[0]
    for r in rows:
        r["peak_rss_ratio"] = round(r["peak_rss_mb"] / base["peak_rss_mb"], 3)
        r["seconds_per_sampled_frame_ratio"] = round(
            r["seconds_per_sampled_frame"] / base["seconds_per_sampled_frame"], 3)
    print(json.dumps(rows, indent=2))
    print(f"{'film':>5} {'source':>7} {'sampled':>8} {'kept':>6} {'pre s':>7} {'bg s':>7} {'RSS MB':>7} "
          f"{'RSS x':>6} {'s/frame x':>9}")
    for r in rows:
        print(f"{r['loops']:>4}x {r['source_frames']:>7} {r['sampled_frames']:>8} {r['kept_frames']:>6} "
              f"{r['preprocessing']['seconds']:>7} {r['background']['seconds']:>7} {r['peak_rss_mb']:>7} "
              f"{r['peak_rss_ratio']:>6} {r['seconds_per_sampled_frame_ratio']:>9}")
    last = rows[-1]
    print(f"peak RSS {last['loops']}x / 1x = {last['peak_rss_ratio']} (goal <= 1.3); seconds per sampled "
          f"frame {last['loops']}x / 1x = {last['seconds_per_sampled_frame_ratio']} (goal <= 1.2)")


if __name__ == "__main__":
    main()

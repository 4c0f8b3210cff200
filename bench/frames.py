"""Frames per second through ingest -> measure -> dedup -> quality filter -> extract, on the default demo
film and on the same film rendered at 1280x720; and a second `kedro run --only-missing-outputs` against the
first run (baseline: that first run, same project, same process). Goal: second run <= 10% of first.

    .venv/bin/python bench/frames.py [--hd-shots 12]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from bench.film_scale import new_project  # noqa: E402

from animation_lora.datasets import FilmDataset  # noqa: E402
from animation_lora.demo import render_demo_film  # noqa: E402
from animation_lora.frames.dedup import Dedup  # noqa: E402
from animation_lora.frames.quality import Quality  # noqa: E402
from animation_lora.frames.sampling import FrameSampling  # noqa: E402
from animation_lora.pipelines.preprocessing import frame_nodes as nodes  # noqa: E402


def params():
    p = yaml.safe_load((ROOT / "conf/base/parameters_preprocessing.yml").read_text())["preprocessing"]
    return {"sampling": FrameSampling(**p["sampling"]), "dedup": Dedup(**p["dedup"]),
            "quality": Quality(**p["quality"])}


def time_nodes(film_path: Path) -> dict:
    p = params()
    film = FilmDataset(str(film_path)).load()
    t0 = time.perf_counter()
    log = nodes.ingest(film, p["sampling"])
    index = nodes.measure_frames(film, log, p["sampling"], p["dedup"])
    index = nodes.filter_quality(nodes.deduplicate(index, p["dedup"]), p["quality"])
    frames = dict(nodes.extract_frames(film, index).items())
    seconds = time.perf_counter() - t0
    return {
        "source_frames": len(log),
        "kept": len(frames),
        "seconds": round(seconds, 2),
        "source_fps": round(len(log) / seconds, 1),
    }


def time_kedro_runs(film_path: Path, work: Path) -> dict:
    from tests.conftest import run_session

    project = new_project(work, film_path, demo=True)
    import os

    os.chdir(project)
    t0 = time.perf_counter()
    run_session(project, "preprocessing")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_session(project, "preprocessing", only_missing_outputs=True)
    second = time.perf_counter() - t0
    return {
        "first_run_s": round(first, 2),
        "only_missing_outputs_s": round(second, 2),
        "ratio_vs_first_run": round(second / first, 3),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--hd-shots", type=int, default=12, help="shots of the 1280x720 film (12 = the default script)"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        default = render_demo_film(tmp / "default" / "demo_film", preset="default")
        hd = render_demo_film(
            tmp / "hd" / "demo_film", preset="default", width=1280, height=720, n_shots=args.hd_shots
        )
        result = {
            "default_512x288": time_nodes(default),
            "hd_1280x720": time_nodes(hd),
            "rerun": time_kedro_runs(default, tmp),
        }
    print(json.dumps(result, indent=2))
    r = result["rerun"]["ratio_vs_first_run"]
    print(f"--only-missing-outputs rerun / first run = {r:.3f} (goal <= 0.10)")


if __name__ == "__main__":
    main()

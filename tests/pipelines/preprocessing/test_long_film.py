"""A 10-minute film through preprocessing, as a user runs it (`kedro run`, its own process): its peak memory
stays within 1.3x that of the same clip played once, because frames stream from the film and the sampling
budget bounds the expensive stages (issue 20)."""

from __future__ import annotations

import pandas as pd
import pytest
from bench.film_scale import kedro_run, new_project, write_looped

from animation_lora.datasets import FilmDataset

BUDGET = "preprocessing.budget.max_frames=100"


@pytest.mark.slow
def test_a_ten_minute_film_keeps_the_memory_of_a_three_second_clip(tiny_film, tmp_path):
    film = FilmDataset(str(tiny_film)).load()
    clip = [f.image for f in film.frames() if f.image is not None]  # 36 frames, 3 s at 12 fps
    runs = {}
    for loops in (1, 200):  # 200 loops: 7,200 frames, 10 minutes
        work = tmp_path / f"x{loops}"
        work.mkdir()
        path = work / f"looped_{loops}x.mp4"
        frames = write_looped(clip, film.fps, loops, path)
        project = new_project(work, path)
        runs[loops] = kedro_run(project, "preprocessing", BUDGET)
        index = pd.read_parquet(sorted((project / "data/02_intermediate/frame_index.parquet").iterdir())[-1])
        runs[loops].update(frames=frames, sampled=int(index.phash.notna().sum()), kept=int(index.kept.sum()))
    short, long = runs[1], runs[200]
    assert long["frames"] / film.fps >= 600 and long["sampled"] >= 0.95 * 200 * short["sampled"]
    assert long["kept"] == 100  # the budget, every frame of it segmented
    assert long["peak_rss_mb"] <= 1.3 * short["peak_rss_mb"], runs

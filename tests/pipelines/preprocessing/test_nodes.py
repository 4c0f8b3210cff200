"""Node-level tests on crafted frames with known answers."""

from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import pytest

from animation_lora.datasets import FilmDataset
from animation_lora.frames.dedup import Dedup
from animation_lora.frames.quality import Quality
from animation_lora.frames.sampling import FrameSampling, measure
from animation_lora.ids import frame_id
from animation_lora.pipelines.preprocessing.frame_nodes import (
    deduplicate,
    extract_frames,
    filter_quality,
    ingest,
    measure_frames,
)

SAMPLING = FrameSampling(every_n_frames=2, target_fps=None, cut_threshold=27.0, min_shot_frames=2)
DEDUP = Dedup(hash_size=8, max_hamming=2)
QUALITY = Quality(min_width=64, min_height=48, min_sharpness=5.0, blur_ratio=0.4, dark_mean=20,
                  bright_mean=240, max_clipped_fraction=0.6)


def scene(seed: int) -> np.ndarray:
    """A textured 'shot': blocks of random colour, sharp edges."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(30, 220, (9, 12, 3)).astype(np.uint8)
    return cv2.resize(blocks, (192, 144), interpolation=cv2.INTER_NEAREST)


def as_index(frames: dict, shots: list[int]) -> pd.DataFrame:
    rows = [
        dict(
            frame_id=k,
            frame=i,
            shot=s,
            readable=True,
            kept=True,
            reason="",
            width=v.shape[1],
            height=v.shape[0],
            **measure(v, DEDUP.hash_size),
        )
        for (i, (k, v)), s in zip(enumerate(frames.items()), shots)
    ]
    return pd.DataFrame(rows)


def test_dedup_removes_exact_and_near_duplicates_and_keeps_distinct_shots():
    a, b, c = scene(1), scene(2), scene(3)
    rng = np.random.default_rng(0)
    noisy = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    soft = cv2.GaussianBlur(a, (5, 5), 1.5)
    frames = {
        "a": a,
        "a_copy": a.copy(),
        "a_noisy": noisy,
        "a_soft": soft,
        "b": b,
        "c": c,
        "a_again": a.copy(),
    }
    index = deduplicate(as_index(frames, [0, 0, 0, 0, 1, 2, 3]), DEDUP)
    kept = set(index.frame_id[index.kept])
    # one representative of the a-group (the sharpest: the original or its exact copy), b and c
    assert len(kept) == 3 and {"b", "c"} <= set(kept)
    rep = (set(kept) - {"b", "c"}).pop()
    assert rep in {"a", "a_copy", "a_again", "a_noisy"} and rep != "a_soft"
    dropped = index[~index.kept]
    assert set(dropped.frame_id) == set(frames) - set(kept)
    assert dropped.reason.str.startswith("near-duplicate of ").all()


def test_quality_filter_drops_blurred_dark_and_small_frames():
    frames = {f"s{i}": scene(10 + i) for i in range(4)}
    frames["blurred"] = cv2.GaussianBlur(scene(20), (0, 0), 6)
    frames["dark"] = (scene(21) * 0.05).astype(np.uint8)
    frames["tiny"] = cv2.resize(scene(22), (40, 30), interpolation=cv2.INTER_NEAREST)
    index = filter_quality(as_index(frames, [0] * 7), QUALITY)
    kept = set(index.frame_id[index.kept])
    assert set(kept) == {"s0", "s1", "s2", "s3"}
    reasons = dict(zip(index.frame_id, index.reason))
    assert reasons["blurred"].startswith("blurred") and reasons["dark"].startswith("under-exposed")
    assert reasons["tiny"].startswith("too small") and reasons["s0"] == "kept"


def test_ingest_finds_the_true_cuts_and_sampling_keeps_every_shot(tiny_film, tiny_truth):
    film = FilmDataset(str(tiny_film)).load()
    log = ingest(film, SAMPLING)
    assert list(log.frame[log.cut]) == list(tiny_truth.frames.index[tiny_truth.frames.first_of_shot])
    assert (log.shot.values == tiny_truth.frames.shot.values).all()
    index = measure_frames(film, log, SAMPLING, DEDUP)
    assert index.kept.sum() == 18  # every 2nd of 6 frames in each of 6 shots
    assert set(index.shot[index.kept]) == set(range(6))
    frames = extract_frames(film, index)
    assert len(frames) == 18 and frame_id(0) in frames
    decoded = dict(frames.items())  # streamed in film order: the frames the measures were taken on
    assert list(decoded) == list(index.frame_id[index.kept])
    assert decoded[frame_id(0)].shape == (180, 320, 3)
    assert measure(decoded[frame_id(2)], DEDUP.hash_size)["phash"] == index.phash[index.frame == 2].iloc[0]
    assert np.array_equal(frames[frame_id(2)], decoded[frame_id(2)])


def test_target_fps_sets_the_step(tiny_film):
    film = FilmDataset(str(tiny_film)).load()
    log = ingest(film, SAMPLING)
    index = measure_frames(film, log, replace(SAMPLING, target_fps=4), DEDUP)  # 12 fps / 4 = every 3rd
    assert index.kept.sum() == 12


def test_unreadable_frames_are_in_the_index_with_their_reason(tmp_path):
    from PIL import Image

    for i in range(4):
        Image.fromarray(scene(i)).save(tmp_path / f"{i:03d}.png")
    (tmp_path / "002.png").write_bytes(b"garbage")
    film = FilmDataset(str(tmp_path), fps=24).load()
    log = ingest(film, SAMPLING)
    index = measure_frames(film, log, replace(SAMPLING, every_n_frames=1), DEDUP)
    assert index.kept.sum() == 3
    bad = index[index.frame == 2].iloc[0]
    assert not bad.kept and bad.reason.startswith("unreadable: unreadable image")
    final = filter_quality(deduplicate(index, DEDUP), QUALITY)
    assert final.kept.sum() == 3 and final.loc[final.frame == 2, "reason"].iloc[0].startswith("unreadable")
    assert set(extract_frames(film, final)) == {frame_id(i) for i in (0, 1, 3)}


@pytest.mark.parametrize("step", [1, 3])
def test_first_frame_of_each_shot_is_always_sampled(tiny_film, tiny_truth, step):
    film = FilmDataset(str(tiny_film)).load()
    index = measure_frames(film, ingest(film, SAMPLING), replace(SAMPLING, every_n_frames=step), DEDUP)
    starts = tiny_truth.frames.index[tiny_truth.frames.first_of_shot]
    assert {frame_id(i) for i in starts} <= set(index.frame_id[index.kept])

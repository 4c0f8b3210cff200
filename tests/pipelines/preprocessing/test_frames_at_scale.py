"""A feature film's frame stage: the neighbour-index deduplication keeps exactly what the scan of every group
kept, and the sampling budget's quotas are the max-min fair ones, every shot represented."""

import imagehash
import numpy as np
import pandas as pd

from animation_lora.frames.budget import FrameBudget, apply_budget, shot_quotas, spread_sharpest
from animation_lora.frames.dedup import mark_duplicates


def reference_dedup(index: pd.DataFrame, max_hamming: int) -> set[str]:
    """The frames the former deduplication kept: each frame joins the first group (in creation order) whose
    first frame is within max_hamming, scanning every group; the sharpest of each group is kept."""
    groups: list[list[int]] = []
    hashes = {r: imagehash.hex_to_hash(index.at[r, "phash"]) for r in index.index}
    for row in index.index:
        for g in groups:
            if hashes[g[0]] - hashes[row] <= max_hamming:
                g.append(row)
                break
        else:
            groups.append([row])
    return {index.at[max(g, key=lambda r: index.at[r, "sharpness"]), "frame_id"] for g in groups}


def hashes_near(rng, centres: np.ndarray, n: int) -> list[str]:
    """n 64-bit hashes, each a random centre with 0-4 random bits flipped (so groups overlap and chain)."""
    out = []
    for _ in range(n):
        bits = centres[rng.integers(len(centres))].copy()
        bits[rng.choice(64, rng.integers(0, 5), replace=False)] ^= True
        out.append(str(imagehash.ImageHash(bits.reshape(8, 8))))
    return out


def test_neighbour_index_dedup_keeps_the_same_frames_as_the_full_scan():
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, (40, 64)).astype(bool)
    hashes = hashes_near(rng, centres, 800)
    index = pd.DataFrame({"frame_id": [f"f{i:06d}" for i in range(800)], "phash": hashes,
                          "sharpness": rng.random(800), "kept": True, "reason": ""})
    for max_hamming in (0, 2, 3):
        out = mark_duplicates(index, max_hamming)
        assert set(out.frame_id[out.kept]) == reference_dedup(index, max_hamming)
        assert out.reason[~out.kept].str.startswith("near-duplicate of f").all()


def test_quotas_are_max_min_fair_and_fill_the_budget():
    candidates = pd.Series({0: 10, 1: 2, 2: 50, 3: 1})
    # a quota of 8 fits (8 + 2 + 8 + 1 = 19), 9 does not (21); the one frame left goes to the longest shot
    assert shot_quotas(candidates, 20).to_dict() == {0: 8, 1: 2, 2: 9, 3: 1}
    assert shot_quotas(candidates, 100).to_dict() == candidates.to_dict()  # under budget: all
    many = pd.Series(5, index=range(10))
    assert list(shot_quotas(many, 4)) == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]  # one each, spread over the film


def test_each_shot_keeps_its_sharpest_frames_spread_over_it():
    frames = pd.DataFrame({"sharpness": [1, 9, 2, 3, 4, 8, 1, 1, 7, 1]}, index=range(100, 110))
    assert spread_sharpest(frames, 2) == [101, 105]  # the sharpest of frames 0-4 and of 5-9
    assert spread_sharpest(frames, 1) == [101]


def test_budget_keeps_at_most_max_frames_with_a_reason_for_each_cut():
    rng = np.random.default_rng(1)
    shots = np.repeat(np.arange(30), rng.integers(1, 60, 30))
    index = pd.DataFrame({"frame_id": [f"f{i:06d}" for i in range(len(shots))], "frame": range(len(shots)),
                          "shot": shots, "sharpness": rng.random(len(shots)), "kept": True, "reason": "kept"})
    index.loc[::7, ["kept", "reason"]] = [False, "blurred"]
    out = apply_budget(index, FrameBudget(max_frames=120))
    assert out.kept.sum() == 120 and set(out.shot[out.kept]) == set(index.shot[index.kept])
    cut = out[index.kept & ~out.kept]
    assert cut.reason.str.startswith("over the frame budget (max_frames 120").all()
    assert (out.reason[~index.kept] == "blurred").all()  # what was dropped before keeps its reason
    assert apply_budget(index, FrameBudget(max_frames=None)).equals(index)

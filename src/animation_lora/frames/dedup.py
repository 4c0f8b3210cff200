"""Near-duplicate frames: perceptual-hash Hamming distance to a group's first frame, anywhere in the film;
the sharpest frame of each group is kept. The candidates come from multi-index hashing over the hashes' bits,
so a feature film's tens of thousands of frames take seconds (a ball tree degenerates at 64 binary
dimensions: 201 s for 65,000 hashes)."""

from __future__ import annotations

from typing import Annotated

import imagehash
import numpy as np
import pandas as pd
from pydantic import Field

from ..params import block


@block
class Dedup:
    hash_size: Annotated[int, Field(ge=2)] = 8  # perceptual hash of hash_size^2 bits
    max_hamming: Annotated[int, Field(ge=0)] = 2  # this close to a group's first frame: near-duplicates


def hash_bits(phashes: list[str]) -> np.ndarray:
    """The hashes (imagehash hex strings) as a (n, bits) array of 0/1."""
    return np.array([imagehash.hex_to_hash(h).hash.ravel() for h in phashes], dtype=np.uint8).reshape(
        len(phashes), -1)


def group_leaders(bits: np.ndarray, max_hamming: int) -> np.ndarray:
    """For each hash, in order, the position of its group's first member: the earliest earlier leader within
    `max_hamming` bits, else itself (a new group) — the greedy grouping of a scan over every group, with the
    candidates from multi-index hashing instead: the bits cut into max_hamming + 1 pieces, two hashes within
    max_hamming bits agree on at least one piece (pigeonhole), so only the leaders sharing a piece with a
    hash are compared with it."""
    pieces = np.array_split(np.arange(bits.shape[1]), max_hamming + 1)
    keys = [[row.tobytes() for row in np.packbits(bits[:, p], axis=1)] for p in pieces]
    buckets: list[dict[bytes, list[int]]] = [{} for _ in pieces]
    leader = np.arange(len(bits))
    for i in range(len(bits)):
        candidates = sorted({j for b, k in zip(buckets, keys) for j in b.get(k[i], ())})
        if candidates:
            within = np.flatnonzero((bits[candidates] != bits[i]).sum(axis=1) <= max_hamming)
            if len(within):
                leader[i] = candidates[within[0]]
                continue
        for b, k in zip(buckets, keys):  # a new group: its first frame is a leader others may join
            b.setdefault(k[i], []).append(i)
    return leader


def mark_duplicates(index: pd.DataFrame, max_hamming: int) -> pd.DataFrame:
    """The frame index with every near-duplicate but the sharpest of its group no longer kept, the reason
    naming the frame kept and the distance."""
    index = index.copy()
    rows = index.index[index.kept.astype(bool)]
    if not len(rows):
        return index
    bits = hash_bits(list(index.loc[rows, "phash"]))
    leader = group_leaders(bits, max_hamming)
    sharpness = pd.Series(index.loc[rows, "sharpness"].to_numpy(float))
    best = sharpness.groupby(leader).idxmax().reindex(leader).to_numpy()  # the first of a group's sharpest
    dropped = np.flatnonzero(best != np.arange(len(rows)))
    ids = index.loc[rows, "frame_id"].to_numpy()
    distance = (bits[dropped] != bits[best[dropped]]).sum(axis=1)
    index.loc[rows[dropped], "kept"] = False
    index.loc[rows[dropped], "reason"] = [f"near-duplicate of {ids[b]} (hamming {d})"
                                          for b, d in zip(best[dropped], distance)]
    return index

"""Near-duplicate frames: perceptual-hash Hamming distance to a group's first frame, anywhere in the film;
the sharpest frame of each group is kept. The neighbours come from a ball tree over the hashes' bits
(scikit-learn), so a feature film's tens of thousands of frames take seconds, not hours."""

from __future__ import annotations

from typing import Annotated

import imagehash
import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.neighbors import BallTree

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
    `max_hamming` bits, else itself (a new group) — the greedy grouping, with the candidates from a radius
    search instead of a scan of every group."""
    leader = np.arange(len(bits))
    if len(bits) < 2:
        return leader
    # the tree's hamming metric is the fraction of differing bits; half a bit more keeps the float exact
    near = BallTree(bits, metric="hamming").query_radius(bits, r=(max_hamming + 0.5) / bits.shape[1])
    for i, candidates in enumerate(near):
        earlier = candidates[(candidates < i) & (leader[candidates] == candidates)]
        if len(earlier):
            leader[i] = earlier.min()
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
    sharpness = index.loc[rows, "sharpness"].to_numpy(float)
    order = np.argsort(leader, kind="stable")  # each group's members together, in film order
    for members in np.split(order, np.flatnonzero(np.diff(leader[order])) + 1):
        if len(members) < 2:
            continue
        best = members[np.argmax(sharpness[members])]  # the first of the sharpest, as max() picks
        for m in members[members != best]:
            index.at[rows[m], "kept"] = False
            index.at[rows[m], "reason"] = (f"near-duplicate of {index.at[rows[best], 'frame_id']} "
                                           f"(hamming {int((bits[m] != bits[best]).sum())})")
    return index

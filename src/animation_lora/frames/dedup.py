"""Near-duplicate frames: perceptual-hash Hamming distance to a group's first frame, anywhere in the film;
the sharpest frame of each group is kept."""

from __future__ import annotations

from typing import Annotated

import imagehash
import pandas as pd
from pydantic import Field

from ..params import block


@block
class Dedup:
    hash_size: Annotated[int, Field(ge=2)] = 8  # perceptual hash of hash_size^2 bits
    max_hamming: Annotated[int, Field(ge=0)] = 2  # this close to a group's first frame: near-duplicates


def hamming(a: str, b: str) -> int:
    return imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)


def mark_duplicates(index: pd.DataFrame, max_hamming: int) -> pd.DataFrame:
    """The frame index with every near-duplicate but the sharpest of its group no longer kept, the reason
    naming the frame kept and the distance."""
    index = index.copy()
    groups: list[list[int]] = []  # row positions; groups[g][0] is the leader
    for row in index.index[index.kept]:
        h = index.at[row, "phash"]
        for g in groups:
            if hamming(index.at[g[0], "phash"], h) <= max_hamming:
                g.append(row)
                break
        else:
            groups.append([row])
    for g in groups:
        best = max(g, key=lambda r: index.at[r, "sharpness"])
        for r in g:
            if r != best:
                index.at[r, "kept"] = False
                index.at[r, "reason"] = (
                    f"near-duplicate of {index.at[best, 'frame_id']} "
                    f"(hamming {hamming(index.at[best, 'phash'], index.at[r, 'phash'])})"
                )
    return index

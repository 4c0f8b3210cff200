"""Read the demo film's ground truth back: per-frame shot/location, per-instance identity, action,
expression, joints (COCO-17) and face box, instance masks and the clean background plate."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def film_fingerprint(path: str | Path) -> str:
    """SHA-256 of a film file: written with the demo's ground truth, so the truth is applied to that
    film only and never to another film given as `film_path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def belongs_to(folder: str | Path, film: str | Path) -> bool:
    """Whether the ground truth in `folder` was written for `film` (by its fingerprint; a ground truth
    written before fingerprints belongs to the film beside it, `<folder>/../film.mp4`)."""
    folder, film = Path(folder), Path(film)
    if not film.is_file():
        return False  # a folder of frames is never the demo film
    if not (folder / "meta.json").exists():
        return film.resolve() == (folder.parent / "film.mp4").resolve()
    recorded = json.loads((folder / "meta.json").read_text()).get("film_sha256")
    if recorded is None:
        return film.resolve() == (folder.parent / "film.mp4").resolve()
    return recorded == film_fingerprint(film)


class GroundTruth:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "meta.json").exists():
            raise FileNotFoundError(f"No demo ground truth in '{self.folder}' (meta.json missing)")
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.frames = pd.read_parquet(self.folder / "frames.parquet").set_index("frame")
        self.instances = pd.read_parquet(self.folder / "instances.parquet")

    @cached_property
    def labels(self) -> np.ndarray:
        """(n_frames, H, W) uint8: 0 background, k the character labelled k (see meta['label_of'])."""
        with np.load(self.folder / "labels.npz") as z:
            return z["labels"]

    @cached_property
    def _plates(self) -> dict[str, np.ndarray]:
        return {
            p.stem: np.asarray(Image.open(p).convert("RGB"))
            for p in sorted((self.folder / "plates").glob("*.png"))
        }

    @property
    def size(self) -> tuple[int, int]:
        return self.meta["spec"]["width"], self.meta["spec"]["height"]

    def mask(self, frame: int, character: str) -> np.ndarray:
        return self.labels[frame] == self.meta["label_of"][character]

    def plate(self, frame: int) -> np.ndarray:
        """The clean background of a frame, exactly as it was under the characters."""
        row = self.frames.loc[frame]
        w, _ = self.size
        return self._plates[row["location"]][:, int(row["camera_x"]) : int(row["camera_x"]) + w]

    def joints(self, frame: int, character: str) -> np.ndarray:
        row = self.instances[(self.instances.frame == frame) & (self.instances.character == character)].iloc[
            0
        ]
        return np.asarray(row["joints"], np.float32).reshape(17, 3)

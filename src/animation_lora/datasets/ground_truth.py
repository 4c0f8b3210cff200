"""The demo film's ground truth as a catalog dataset (read-only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from ..demo.ground_truth import GroundTruth, belongs_to

log = logging.getLogger(__name__)


class GroundTruthDataset(AbstractDataset[None, "GroundTruth | None"]):
    """Loads `GroundTruth` from a folder, only for the film it was written for.

    `film_path` is the film being run: when it is not the demo film the truth belongs to (by the
    fingerprint in `meta.json`), this loads None and every scorer writes `{"ground_truth": false}`.
    With `filepath: null` (the studio environment) it always loads None."""

    def __init__(self, filepath: str | None, film_path: str | None = None,
                 metadata: dict[str, Any] | None = None):
        self._path = Path(filepath) if filepath else None
        self._film = Path(film_path) if film_path else None
        self.metadata = metadata

    def load(self) -> GroundTruth | None:
        if self._path is None:
            return None
        if self._film is not None and not belongs_to(self._path, self._film):
            log.info("No ground truth for '%s' (the demo's truth in '%s' belongs to another film): "
                     "scores report ground_truth false", self._film, self._path)
            return None
        if not (self._path / "meta.json").exists():
            raise DatasetError(
                f"No demo ground truth in '{self._path}': render the demo film first (`kedro run`)"
            )
        return GroundTruth(self._path)

    def save(self, data: None) -> None:
        raise DatasetError("The ground truth is written by the demo renderer only")

    def _exists(self) -> bool:
        return self._path is not None and (self._path / "meta.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path), "film_path": str(self._film)}

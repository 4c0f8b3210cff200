"""The demo film's ground truth as a catalog dataset (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from ..demo.ground_truth import GroundTruth


class GroundTruthDataset(AbstractDataset[None, "GroundTruth | None"]):
    """Loads `GroundTruth` from a folder; with `filepath: null` (a real film) it loads None and the
    scoring nodes report that there is nothing to score against."""

    def __init__(self, filepath: str | None, metadata: dict[str, Any] | None = None):
        self._path = Path(filepath) if filepath else None
        self.metadata = metadata

    def load(self) -> GroundTruth | None:
        if self._path is None:
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
        return {"filepath": str(self._path)}

"""What the project's versioned local datasets share: construction, description and the existence check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractVersionedDataset, DatasetError, Version


class VersionedLocalDataset(AbstractVersionedDataset):
    """A versioned file or folder on local disk; `_present(path)` says whether a saved version is complete."""

    def __init__(self, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(PurePosixPath(filepath), version)
        self.metadata = metadata

    def _present(self, path: Path) -> bool:
        return path.exists()

    @contextlib.contextmanager
    def _new_version(self, folder: bool = False) -> Iterator[Path]:
        """Where to write a new version: `<path>.partial`, renamed to the version's path once written, so a
        save that dies half-way is never loaded (Kedro's latest-version glob does not match it)."""
        path = Path(self._get_save_path())
        partial = path.with_name(path.name + ".partial")
        (partial if folder else partial.parent).mkdir(parents=True, exist_ok=not folder)
        yield partial
        partial.rename(path)

    def _exists(self) -> bool:
        try:
            return self._present(Path(self._get_load_path()))
        except DatasetError:  # no version saved yet
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}

"""The curation file of the film being run: `<filepath>/<film name>.yml`, what a person decided about its
clusters and datasets (`animation_lora.curation`), with the film's fingerprint (SHA-256): its decisions
name frames, so a file made for another version of the film is refused, never misapplied. Loads None when
there is none (the pipelines then run as they would without a person). Each save keeps the file it replaces
in `<film name>.history/` under its time, and writes atomically: a reader never sees half a file."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kedro.io import AbstractDataset, DatasetError

from ..demo.ground_truth import film_fingerprint
from .film import film_name, film_path_given


@functools.lru_cache(maxsize=8)
def _fingerprint(path: Path, size: int, modified: int) -> str:
    return film_fingerprint(path)


def fingerprint(film: Path) -> str:
    """The film file's SHA-256, once per process for a file that did not change (every node that reads the
    curation checks it)."""
    stat = film.stat()
    return _fingerprint(film.resolve(), stat.st_size, stat.st_mtime_ns)


class CurationFile(AbstractDataset[dict, dict | None]):
    def __init__(self, filepath: str, film_path: str, metadata: dict[str, Any] | None = None):
        self._root = Path(filepath)
        self._film = film_path_given(film_path)
        self.metadata = metadata

    @property
    def film(self) -> Path:
        return self._film

    @property
    def path(self) -> Path:
        return self._root / f"{film_name(self._film)}.yml"

    @property
    def history(self) -> Path:
        return self._root / f"{film_name(self._film)}.history"

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except yaml.YAMLError as err:
            raise DatasetError(f"Curation file '{self.path}' is not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise DatasetError(f"Curation file '{self.path}' holds a {type(data).__name__}, not a mapping")
        if data.get("film") not in (None, "", self._film.name):
            raise DatasetError(f"Curation file '{self.path}' was made for the film '{data['film']}', not "
                               f"'{self._film.name}': move it away or give that film")
        recorded = data.pop("film_sha256", None)
        if recorded and self._film.is_file() and recorded != fingerprint(self._film):
            raise DatasetError(
                f"Curation file '{self.path}' was made for another version of '{self._film.name}' (its "
                f"fingerprint differs): its decisions name frames of that version. Move it away (the "
                f"decisions stay readable) or give the film it was made for")
        return data

    def save(self, data: dict) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # the decisions it replaces stay readable
            self.history.mkdir(exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H.%M.%S.%fZ")
            shutil.copy2(self.path, self.history / f"{stamp}.yml")
        made_for = {"film": self._film.name}
        if self._film.is_file():  # a folder of frames has no one file to fingerprint
            made_for["film_sha256"] = fingerprint(self._film)
        data = {**made_for, **{k: v for k, v in data.items() if k not in made_for}}
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        handle, temporary = tempfile.mkstemp(dir=self._root, suffix=".yml.partial")
        with os.fdopen(handle, "w") as f:
            f.write(text)
        os.replace(temporary, self.path)

    def _exists(self) -> bool:
        return self.path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self.path)}

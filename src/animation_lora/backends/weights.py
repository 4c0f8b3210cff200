"""Where weight files live: inside registry packages (embedded) or at a path from parameters (studio)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, relative: str) -> Path:
    """A file shipped inside an installed package, found without importing it (some of these
    packages import tensorflow at import time)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"Package '{package}' is not installed; run `make install` "
            f"(it comes from requirements-nodeps.txt)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"'{relative}' is missing from package '{package}' at {path}")
    return path


def checkpoint_path(value: str | None, parameter: str) -> Path:
    """A studio checkpoint: a clear error naming the parameter and the path when it is not there."""
    if not value or not Path(value).exists():
        raise FileNotFoundError(f"Checkpoint not found: parameter `{parameter}` is '{value}'")
    return Path(value)

"""Where weight files live: inside registry packages (embedded) or at a path from parameters (studio)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


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


UNVERIFIED = "unverified"  # the user's explicit opt-out, by name, from a code-running file's hash check


def verified(path: Path, expected: str | None, parameter: str, why: str) -> Path:
    """A file that runs code when loaded (`why`: TorchScript, a Python config, a pickle) is loaded only when
    its SHA-256 is the one in `parameter`; `parameter: unverified` loads it anyway, with a warning. Without a
    hash, or with another one, it is refused before a byte of it runs."""
    import hashlib
    import logging

    if expected == UNVERIFIED:
        logging.getLogger(__name__).warning("Loading '%s' without checking it (`%s: unverified`): %s", path,
                                            parameter, why)
        return path
    if not expected:
        raise ValueError(f"`{parameter}` is not set: '{path}' {why}, so it is loaded only with its sha256 "
                         f"(`sha256sum {path}`); or set `{parameter}: {UNVERIFIED}` to load it unchecked")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected.lower():
        raise ValueError(f"'{path}' has sha256 {h.hexdigest()}, not the {expected} in `{parameter}`: refused "
                         f"({why})")
    return path


CHECKPOINT_KEYS = ("checkpoint", "model_path", "path", "original_config", "clip_checkpoint")


def configured_checkpoints(params: Any, where: str) -> list[tuple[str, str]]:
    """Every checkpoint path a parameter block asks for, as (YAML path, file): keys named like a checkpoint,
    inside the selected backend's block only (an unselected backend's paths are not needed)."""
    if not isinstance(params, dict):
        return []
    found = []
    for key, value in params.items():
        if isinstance(value, dict):
            if "backend" in params and key != params["backend"]:
                continue  # another backend's settings
            found += configured_checkpoints(value, f"{where}.{key}")
        elif key in CHECKPOINT_KEYS and isinstance(value, str) and value:
            found.append((f"{where}.{key}", value))
    return found


def missing_checkpoints(blocks: dict[str, Any]) -> list[tuple[str, str]]:
    """Of the checkpoints the parameter blocks ask for, those not on disk: (YAML path, file)."""
    wanted = [item for name, block in blocks.items() for item in configured_checkpoints(block, name)]
    return [(where, file) for where, file in wanted if not Path(file).exists()]

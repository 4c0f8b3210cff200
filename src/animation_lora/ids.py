"""The ids the pipelines give frames and instances, written and read in one place.

A frame is `f<frame number, 6 digits>` (`f000042`); an instance is `<frame id>_<k>` (`f000042_1`), its k-th
character in that frame. A name a user gives (a character, a scene, a LoRA) becomes a file or folder name:
`safe_name` is the one rule it must pass where it enters, and `inside` checks a written path stays under its
root."""

from __future__ import annotations

import re
from pathlib import Path

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
SAFE_NAME_RULE = "letters, digits, '_', '-' or '.', starting with a letter or digit, at most 100 characters"


def safe_name(name: object, where: str) -> str:
    """`name` when it can be a file or folder name (no path, no `..`), else an error naming `where`."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ValueError(f"{where} is {name!r}: a name becomes a file or folder name, so it must be "
                         f"{SAFE_NAME_RULE}")
    return name


def inside(root: Path, path: Path, what: str) -> Path:
    """`path`, after checking that it resolves to a place under `root` (never beside or above it)."""
    base, resolved = Path(root).resolve(), Path(path).resolve()
    if resolved != base and base not in resolved.parents:
        raise ValueError(f"{what} '{path}' would be written outside '{root}'")
    return Path(path)


def frame_id(number: int) -> str:
    return f"f{number:06d}"


def frame_number(frame: str) -> int:
    """`f000042` -> 42 (also accepts an instance id: its frame's number)."""
    head = instance_frame(frame) if "_" in frame else frame
    if not (head.startswith("f") and head[1:].isdigit()):
        raise ValueError(f"'{frame}' is not a frame id (f<number>)")
    return int(head[1:])


def instance_id(frame: str, k: int) -> str:
    return f"{frame}_{k}"


def instance_frame(instance: str) -> str:
    """`f000042_1` -> `f000042`."""
    return instance.rsplit("_", 1)[0]

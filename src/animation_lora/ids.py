"""The ids the pipelines give frames and instances, written and read in one place.

A frame is `f<frame number, 6 digits>` (`f000042`); an instance is `<frame id>_<k>` (`f000042_1`), its k-th
character in that frame."""

from __future__ import annotations


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

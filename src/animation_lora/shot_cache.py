"""Work done one shot at a time, kept on disk: what a stage makes of a shot (images and table rows) is
written to the shot cache as soon as the shot is done and handed on as file loaders, so a stage holds one
shot in memory whatever the film's length, and a run killed half-way, started again, redoes only the shots
it had not finished.

A shot's entry is keyed by the content of its inputs (the pixels of its frames or layers, so the film itself
and every stage before are in it), the ids its rows name, the stage's parameters and `VERSION`: a changed
frame or parameter recomputes, nothing else does. An entry is written to `<key>.partial` and renamed when
complete, so a kill never leaves a half entry that a later run would take."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .datasets.image_folder import as_pil, read_png
from .image_loop import map_images
from .params import block

log = logging.getLogger(__name__)
VERSION = 1  # bump when what a stage stores for a shot changes shape


@block
class ShotCacheParams:
    dir: str | None = None  # where finished shots are kept (resume); null: in memory, nothing kept


@dataclass
class ShotResult:
    """What a stage made of one shot: image groups `{group: {id: image}}` and table rows `{table: [row]}`."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: dict[str, list[dict]] = field(default_factory=dict)


def _digest(value: Any, h) -> None:
    """Feed a shot's inputs to the hash: images by their pixels and shape, tuples and lists item by item,
    anything else by its JSON."""
    if isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (tuple, list)):
        for v in value:
            _digest(v, h)
    else:
        h.update(json.dumps(value, sort_keys=True, default=str).encode())


def shot_key(stage: str, params: Any, inputs: Any) -> str:
    h = hashlib.sha256(f"{stage}/{VERSION}".encode())
    _digest(asdict(params) if is_dataclass(params) else params, h)
    _digest(inputs, h)
    return h.hexdigest()


def _write(entry: Path, result: ShotResult) -> ShotResult:
    """Write a shot's entry atomically; return it with its images as loaders of the written files."""
    partial_dir = entry.with_name(entry.name + ".partial")
    shutil.rmtree(partial_dir, ignore_errors=True)  # what a killed run left
    partial_dir.mkdir(parents=True)
    for group, images in result.images.items():
        (partial_dir / group).mkdir()
        for key, image in images.items():
            as_pil(image).save(partial_dir / group / f"{key}.png", compress_level=4)
    manifest = {"images": {g: list(images) for g, images in result.images.items()}, "rows": result.rows}
    (partial_dir / "shot.json").write_text(json.dumps(manifest, default=_plain))
    partial_dir.rename(entry)
    return _read(entry)


def _read(entry: Path) -> ShotResult:
    manifest = json.loads((entry / "shot.json").read_text())
    images = {g: {k: partial(read_png, entry / g / f"{k}.png") for k in keys}
              for g, keys in manifest["images"].items()}
    return ShotResult(images, manifest["rows"])


def _plain(value: Any) -> Any:
    """numpy scalars in table rows, as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def cached_table(stage: str, key: Any, cache: ShotCacheParams | None,
                 compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """A whole-film table (the frame log, the frame measures) kept in the cache under `key` (the film's
    identity and the stage's parameters): a restarted run does not decode the film again to remake it."""
    if cache is None or not cache.dir:
        return compute()
    path = Path(cache.dir) / stage / f"{shot_key(stage, key, ())}.parquet"
    if path.exists():
        log.info("%s: reused from the shot cache (%s)", stage, path)
        return pd.read_parquet(path)
    table = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_file = path.with_name(path.name + ".partial")
    table.to_parquet(partial_file)
    partial_file.replace(path)
    return table


def per_shot(stage: str, shots: Iterable[tuple[Any, Any]], compute: Callable[[Any, Any], ShotResult],
             params: Any, cache: ShotCacheParams | None, desc: str, total: int | None = None,
             unit: str = "shot", ids: Callable[[Any], Any] = lambda shot: None,
             ) -> tuple[ShotResult, list[dict[str, str]]]:
    """`compute(shot, inputs)` for each (shot, inputs) (a shot, or any unit of work: a `unit`), through
    `map_images` (one progress bar for the whole film; a shot with an unreadable image skipped with the
    reason), each shot's result written to the cache (`cache.dir`) and reused from it when the same inputs
    and `params` come again (and the same shot and `ids(shot)`, the frame or instance ids its rows name).
    Returns every shot's result merged (images as loaders of the cached files; in
    memory without a cache dir) and the skipped shots."""
    root = Path(cache.dir) / stage if cache is not None and cache.dir else None
    reused = []

    def run(shot: Any, inputs: Any) -> ShotResult:
        if root is None:
            return compute(shot, inputs)
        key = shot_key(stage, params, (shot, ids(shot), inputs))
        entry = root / key[:2] / key
        if (entry / "shot.json").exists():
            reused.append(shot)
            return _read(entry)
        return _write(entry, compute(shot, inputs))

    done, skipped = map_images(shots, run, desc, unit, keyed=True, total=total)
    if reused:
        log.info("%s: %d of %d %ss reused from the shot cache (%s)", desc, len(reused), len(done), unit, root)
    merged = ShotResult()
    for result in done.values():
        for group, images in result.images.items():
            merged.images.setdefault(group, {}).update(images)
        for table, rows in result.rows.items():
            merged.rows.setdefault(table, []).extend(rows)
    return merged, skipped


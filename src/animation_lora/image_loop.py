"""The one loop over many images that every node uses: a progress bar, and an image that cannot be read
(a decode or I/O error, or a `Skip` raised on purpose) skipped with its reason, which the node then puts
as a row in its report table. Any other exception is a bug and ends the run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

log = logging.getLogger(__name__)
T = TypeVar("T")


class Skip(Exception):
    """Raise inside a per-image function to skip that image with a reason."""


# What a damaged or unreadable image file raises (PIL's UnidentifiedImageError and truncated files are
# OSErrors without an errno); a ValueError or TypeError is a bug, not a bad image, and is never skipped.
UNREADABLE = (Skip, OSError, Image.DecompressionBombError)


def bad_image(err: BaseException) -> bool:
    """Whether an error says the image is bad (skip it, with the reason) rather than the machine: an OSError
    with an errno — permission denied, disk full, an I/O error — stops the run instead of becoming a quiet
    skip row for every image that follows."""
    return not (isinstance(err, OSError) and err.errno is not None)


def progress(items: Iterable[T], desc: str, unit: str = "img", total: int | None = None) -> Iterable[T]:
    """The project's progress bar (tqdm), for loops over shots or frames that are not per-image maps."""
    return tqdm(items, desc=desc, unit=unit, total=total)


def materialise(image: Any) -> np.ndarray:
    """Images from a catalog image folder are lazy loaders; arrays pass through. Something that is not an
    image once loaded (no pixels, wrong rank) is a `Skip`."""
    array = image() if callable(image) else image
    if isinstance(array, np.ndarray) and (array.ndim not in (2, 3) or array.size == 0):
        raise Skip(f"not an image (array of shape {array.shape})")
    return array


def skip_table(skipped: list[dict[str, str]], id_column: str = "id") -> pd.DataFrame:
    """The skipped items as report rows: `<id_column>`, `reason`."""
    return pd.DataFrame(skipped, columns=["id", "reason"]).rename(columns={"id": id_column})


def map_images(
    items: dict[str, Any] | Iterable[tuple[str, Any]],
    fn: Callable[..., T],
    desc: str,
    unit: str = "img",
    keyed: bool = False,
    total: int | None = None,
    batch: int = 0,
) -> tuple[dict[str, T], list[dict[str, str]]]:
    """Apply fn to each (id, image) (loaders are loaded first; a tuple of images or loaders is loaded item
    by item), as `fn(image)` or, when `keyed`, `fn(id, image)`; return ({id: result}, [{id, reason}] of the
    skipped items, for the node's report). `items` may be a stream (a film being decoded): it is read one
    item at a time, never held; `total` sizes its progress bar. With `batch`, `fn(images)` takes a list of
    up to `batch` loaded images and returns their results in order (a model's batch; only `batch` images
    are in memory at once)."""
    pairs = items.items() if isinstance(items, dict) else items
    results, skipped, pending = {}, [], {}

    def flush():
        results.update(zip(pending, fn(list(pending.values()))))
        pending.clear()

    for key, item in progress(pairs, desc, unit, total):
        try:
            value = tuple(materialise(i) for i in item) if isinstance(item, tuple) else materialise(item)
            if batch:
                pending[key] = value
                if len(pending) == batch:
                    flush()
                continue
            results[key] = fn(key, value) if keyed else fn(value)
        except UNREADABLE as err:
            if not bad_image(err):
                raise
            reason = f"{type(err).__name__}: {err}" if not isinstance(err, Skip) else str(err)
            log.warning("%s: skipped '%s': %s", desc, key, reason)
            skipped.append({"id": key, "reason": reason})
    if pending:
        flush()
    return results, skipped

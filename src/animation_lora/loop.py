"""The one loop over many images that every node uses: a progress bar, and a bad item skipped with
its reason collected (for the node's report table) instead of ending the run."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class Skip(Exception):
    """Raise inside a per-image function to skip that image with a reason."""


def materialise(image: Any):
    """Images from a catalog image folder are lazy loaders; arrays pass through."""
    return image() if callable(image) else image


def map_images(items: dict[str, Any] | Iterable[tuple[str, Any]], fn: Callable[[Any], Any], desc: str,
               ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Apply fn to each (id, image); return ({id: result}, [{id, reason}] for skipped items)."""
    pairs = list(items.items() if isinstance(items, dict) else items)
    results, skipped = {}, []
    for key, image in tqdm(pairs, desc=desc, unit="img"):
        try:
            results[key] = fn(materialise(image))
        except (Skip, OSError, ValueError) as err:
            log.warning("%s: skipped '%s': %s", desc, key, err)
            skipped.append({"id": key, "reason": str(err)})
    return results, skipped

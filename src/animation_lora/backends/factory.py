"""One way to build every backend from parameters: `{backend: name, <name>: {kwargs}}`, once per process."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def backend_factory(capability: str, builders: dict[str, Callable[..., T]]) -> Callable[[dict[str, Any]], T]:
    """`make(params)` for a capability: the builder named by `params['backend']`, called with
    `params[<backend>]` as keyword arguments, cached by the parameters' content."""

    @lru_cache(maxsize=4)
    def build(key: str) -> T:
        params = json.loads(key)
        backend = params.get("backend")
        if backend not in builders:
            raise ValueError(f"Unknown {capability} backend '{backend}'; choose one of {', '.join(builders)}")
        return builders[backend](**(params.get(backend) or {}))

    def make(params: dict[str, Any]) -> T:
        return build(json.dumps(params, sort_keys=True))

    make.__doc__ = f"The {capability} backend named by params['backend'], built once per process."
    return make

"""One way to build every backend from parameters: `{backend: name, <name>: {kwargs}}`, once per process.

The contract of the per-process cache: `make_<capability>(params)` hands every caller the *same* object
(models are large; building one can take seconds to minutes), already on its `device`. Callers treat its
weights as read-only. A caller that adds layers around frozen weights (LoRA adapters for training) works on
`shared_copy(...)`: its own module tree holding the *same* weight tensors, so a stage never holds two copies
of an 860M-parameter U-Net and the shared model stays bit-identical (tested) as long as the caller never
writes those tensors. A caller that changes weight values in place (the composer fusing LoRA weights) does so
under `weights_lock(model)` and puts back the exact original bits before it lets go; a caller that moves or
casts a model works on `private_copy(...)` of the parts it changes, never on the shared object."""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from ..params import check_arguments

T = TypeVar("T")
log = logging.getLogger(__name__)


def private_copy(module: T) -> T:
    """A deep copy of a shared (cached) model part that the caller may change freely."""
    import copy

    return copy.deepcopy(module)


def shared_copy(module: T) -> T:
    """A new module tree around the *same* parameter and buffer tensors: layers may be added, replaced or
    wrapped (peft adapters), flags such as gradient checkpointing set, without a second copy of the weights
    and without touching the shared model's modules. The weights themselves must not be written, moved or
    cast (use `private_copy` for that)."""
    import copy
    import itertools

    tensors = itertools.chain(module.parameters(), module.buffers())
    return copy.deepcopy(module, memo={id(t): t for t in tensors})


_WEIGHT_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_lock(module) -> threading.RLock:
    """The lock a caller holds while it has written a shared model's weights and not yet put them back (a
    fused LoRA): another thread that uses the same model waits instead of reading changed weights."""
    return _WEIGHT_LOCKS.setdefault(module, threading.RLock())


def backend_factory(capability: str, builders: dict[str, Callable[..., T]]) -> Callable[[dict[str, Any]], T]:
    """`make(params)` for a capability: the builder named by `params['backend']`, called with
    `params[<backend>]` as keyword arguments, cached by the parameters' content."""

    @lru_cache(maxsize=4)
    def build(key: str) -> T:
        params = json.loads(key)
        backend = params.get("backend")
        if backend not in builders:
            raise ValueError(f"Unknown {capability} backend '{backend}'; choose one of {', '.join(builders)}")
        unknown = sorted(set(params) - {"backend", *builders})
        if unknown:
            raise ValueError(
                f"Invalid parameters: `{capability}.{unknown[0]}`: unknown key; known keys: "
                f"backend, {', '.join(builders)}"
            )
        kwargs = params.get(backend) or {}
        check_arguments(builders[backend], kwargs, f"{capability}.{backend}")
        log.info("%s backend: %s", capability, backend)  # which model ran, in every run's log
        return builders[backend](**kwargs)

    def make(params: dict[str, Any]) -> T:
        return build(json.dumps(params, sort_keys=True))

    make.__doc__ = f"The {capability} backend named by params['backend'], built once per process."
    return make

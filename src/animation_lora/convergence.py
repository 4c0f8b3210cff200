"""When a curve has stopped improving (lower is better): one rule for the search's convergence monitor (the
trials' values) and the LoRA trainer's early stop (its validation losses)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def plateaued(values: Sequence[float], patience: int, rel_tol: float) -> bool:
    """True when the last `patience` values improved the best value before them by no more than `rel_tol`
    of it (NaN values, e.g. no validation set, are left out); never with `patience` 0."""
    values = [v for v in values if not math.isnan(v)]
    if patience <= 0 or len(values) <= patience:
        return False
    best_before, best_now = min(values[:-patience]), min(values)
    return best_before - best_now <= rel_tol * abs(best_before)

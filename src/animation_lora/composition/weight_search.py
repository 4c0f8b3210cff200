"""A small Optuna search over the per-LoRA weights within the ranges of `composition.weight_search` (the
original brief's ranges: character 1.0, background 0.7-0.9, ...), maximising the mean composition score of
the `merge` strategy over a few seeds. The defaults are the first candidate; a LoRA without a range keeps its
weight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from PIL import Image

from ..imaging import contact_sheet
from .batch import to_uint8
from .composer import Composer
from .parameters import Sampling, WeightSearch
from .prompts import Request


def search_ranges(defaults: dict[str, float], search: WeightSearch) -> dict[str, tuple[float, float]]:
    """Each LoRA's [low, high]: its configured range, or its default weight alone."""
    return {n: tuple(search.ranges.get(n, [w, w])) for n, w in defaults.items()}


def search_weights(
    composer: Composer,
    scorer: Callable[..., dict[str, Any]],
    prompt: str,
    defaults: dict[str, float],
    search: WeightSearch,
    settings: Sampling,
) -> tuple[dict[str, Any], Image.Image]:
    """The best weights with the evidence (every candidate's weights and score, the defaults' and the best's
    score re-measured), and a before/after grid of the images."""
    ranges = search_ranges(defaults, search)

    def evaluate(weights: dict[str, float]) -> tuple[float, list[np.ndarray]]:
        request = Request(prompt, weights)
        images = [to_uint8(composer.generate("merge", request, settings, s)) for s in search.seeds]
        return float(np.mean([scorer(im, weights)["composition_score"] or 0.0 for im in images])), images

    def objective(trial: optuna.Trial) -> float:
        return evaluate({n: trial.suggest_float(n, *ranges[n]) for n in defaults})[0]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=search.seed))
    study.enqueue_trial(defaults)  # the defaults are the first candidate
    study.optimize(objective, n_trials=search.n_trials)
    before_score, before = evaluate(defaults)
    best = {n: round(float(study.best_params.get(n, defaults[n])), 3) for n in defaults}
    after_score, after = evaluate(best)
    captions = [f"before {before_score:.2f}"] * len(before) + [f"after {after_score:.2f}"] * len(after)
    grid = contact_sheet(
        before + after,
        captions,
        thumb=max(128, settings.width),
        cols=len(before),
        title=f"weights: {defaults} -> {best}",
    )
    evaluated = [
        {"weights": {n: float(t.params.get(n, defaults[n])) for n in defaults}, "score": t.value}
        for t in study.trials
    ]
    tuned = {
        "prompt": prompt,
        "default_weights": defaults,
        "best_weights": best,
        "default_score": before_score,
        "best_score": after_score,
        "trials": len(study.trials),
        "evaluated": evaluated,
    }
    return tuned, Image.fromarray(grid)

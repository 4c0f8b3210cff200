"""A small Optuna search over the per-LoRA weights within the ranges of `composition.weight_search` (the
original brief's ranges: character 1.0, background 0.7-0.9, ...), maximising the rate at which all requested
concepts are present in the `merge` strategy's images over a few seeds (the mean share of concepts present
breaks ties). The defaults are the first candidate; a LoRA without a range keeps its weight."""

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

TIE_BREAK = 1e-3  # weight of the mean share of concepts present, so equal rates still rank


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

    def evaluate(weights: dict[str, float]) -> tuple[float, float, list[np.ndarray]]:
        request = Request(prompt, weights)
        images = [to_uint8(composer.generate("merge", request, settings, s)) for s in search.seeds]
        scores = [scorer(im, weights) for im in images]
        rate = float(np.mean([s["all_present"] or 0.0 for s in scores]))
        return rate, float(np.mean([s["composition_score"] or 0.0 for s in scores])), images

    def objective(trial: optuna.Trial) -> float:
        rate, share, _ = evaluate({n: trial.suggest_float(n, *ranges[n]) for n in defaults})
        trial.set_user_attr("all_present", rate)
        trial.set_user_attr("share", share)
        return rate + TIE_BREAK * share

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=search.seed))
    study.enqueue_trial(defaults)  # the defaults are the first candidate
    study.optimize(objective, n_trials=search.n_trials)
    before_score, before_share, before = evaluate(defaults)
    best = {n: round(float(study.best_params.get(n, defaults[n])), 3) for n in defaults}
    after_score, after_share, after = evaluate(best)
    captions = [f"before {before_score:.2f}"] * len(before) + [f"after {after_score:.2f}"] * len(after)
    grid = contact_sheet(
        before + after,
        captions,
        thumb=max(128, settings.width),
        cols=len(before),
        title=f"weights: {defaults} -> {best}",
    )
    evaluated = [
        {"weights": {n: float(t.params.get(n, defaults[n])) for n in defaults},
         "score": t.user_attrs.get("all_present"), "share": t.user_attrs.get("share")}
        for t in study.trials
    ]
    tuned = {
        "prompt": prompt,
        "default_weights": defaults,
        "best_weights": best,
        "default_score": before_score,
        "best_score": after_score,
        "default_share": before_share,
        "best_share": after_share,
        "score": "all-requested-concepts-present rate over the search seeds (merge)",
        "trials": len(study.trials),
        "evaluated": evaluated,
    }
    return tuned, Image.fromarray(grid)

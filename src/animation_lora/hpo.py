"""Hyper-parameter search with Optuna (the brief asks for 50 trials on the character LoRA, a convergence
monitor, and best_hyperparameters.json reused by the other LoRA types).

The study lives in persistent storage (SQLite under data/06_models by default, or any RDB URL such as
PostgreSQL) so several workers on several machines share one study and a killed search resumes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
from PIL import Image

from .params import block, parse
from .training import TrainConfig

log = logging.getLogger(__name__)

BEST_KEYS = (
    "learning_rate",
    "network_dim",
    "network_alpha",
    "optimizer_type",
    "lr_scheduler",
    "gradient_accumulation_steps",
    "max_train_epochs",
)


@block
class Dimension:
    """One searched parameter: a float or int range, or categorical choices."""

    type: Literal["float", "int", "categorical"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None


@block
class Convergence:
    patience: int
    rel_tol: float


@block
class Search:
    """`training.search`: where the study lives, how many trials, the pruner, the space."""

    storage: str
    study_name: str
    n_trials: int
    convergence: Convergence
    space: dict[str, dict[str, Any]]  # name -> a `Dimension`
    pruner: Literal["median", "hyperband", "none"] = "median"
    seed: int = 0
    trial_args: dict[str, Any] = field(default_factory=dict)  # training.args that differ in trials


def network_alpha(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`network_alpha_ratio` (alpha relative to dim) as kohya's network_alpha = ratio x network_dim, the dim
    searched or else the one the trials train with (`defaults`, the training args)."""
    params = dict(params)
    if "network_alpha_ratio" in params:
        dim = params.get("network_dim", defaults.get("network_dim", TrainConfig.network_dim))
        params["network_alpha"] = params.pop("network_alpha_ratio") * dim
    return params


def open_study(search: Search) -> optuna.Study:
    """The study in its storage, created or resumed; an unreachable database is a clear error, not a hang."""
    url = search.storage
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(("postgresql", "mysql")):
        engine = {"connect_args": {"connect_timeout": 5}}
    else:  # SQLite: a worker waits for another's write lock instead of failing at once
        engine = {"connect_args": {"timeout": 60}}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as err:  # sqlalchemy / driver errors differ per database
        raise ConnectionError(
            f"Optuna storage '{url}' (training.search.storage) cannot be reached: {err}"
        ) from err
    pruners = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "hyperband": optuna.pruners.HyperbandPruner(),
        "none": optuna.pruners.NopPruner(),
    }
    return optuna.create_study(
        study_name=search.study_name,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        pruner=pruners[search.pruner],
        sampler=optuna.samplers.TPESampler(seed=search.seed),
    )


def suggest(trial: optuna.Trial, space: dict[str, Dimension], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of one trial from the search space, `network_alpha_ratio` as network_alpha."""
    params = {}
    for name, spec in space.items():
        if spec.type == "float":
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        elif spec.type == "int":
            params[name] = trial.suggest_int(name, spec.low, spec.high)
        else:
            params[name] = trial.suggest_categorical(name, spec.choices)
    return network_alpha(params, defaults)


class ConvergenceMonitor:
    """Stops the study when the best value has not improved by more than `rel_tol` (relative) in the last
    `patience` finished trials."""

    def __init__(self, patience: int, rel_tol: float):
        self.patience, self.rel_tol = patience, rel_tol
        self.stopped_at: int | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(values) <= self.patience:
            return
        best_before = min(values[: -self.patience])
        best_now = min(values)
        if best_before - best_now <= self.rel_tol * abs(best_before):
            self.stopped_at = trial.number
            log.info(
                "Search converged: no improvement over %.1f%% in %d trials", 100 * self.rel_tol, self.patience
            )
            study.stop()


def run_search(
    objective: Callable[[dict[str, Any], Callable[[int, float], bool]], float],
    search: Search | Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> tuple[optuna.Study, ConvergenceMonitor]:
    """Run until `n_trials` trials have finished in the study (across all workers) or it converges.
    `objective(params, report)` trains and returns the validation loss; `report(step, value)` tells it
    whether the pruner stops the trial. `defaults`: the training args the trials start from."""
    search = parse(Search, search, "training.search")
    space = {
        name: parse(Dimension, spec, f"training.search.space.{name}") for name, spec in search.space.items()
    }
    study = open_study(search)
    monitor = ConvergenceMonitor(search.convergence.patience, search.convergence.rel_tol)

    def wrapped(trial: optuna.Trial) -> float:
        params = suggest(trial, space, defaults or {})

        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        value = objective(params, report)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return value

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(states=finished))
    if done < search.n_trials:
        study.optimize(
            wrapped,
            n_trials=search.n_trials - done,
            callbacks=[optuna.study.MaxTrialsCallback(search.n_trials, states=finished), monitor],
        )
    return study, monitor


def best_hyperparameters(study: optuna.Study, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The keys the brief names, from the best trial (defaults where the space did not search a key)."""
    params = network_alpha(study.best_trial.params, defaults)
    return {k: params.get(k, defaults.get(k)) for k in BEST_KEYS}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "steps_reported": len(t.intermediate_values),
                "last_step": max(t.intermediate_values) if t.intermediate_values else 0,
                "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                **{f"param_{k}": v for k, v in t.params.items()},
            }
        )
    return pd.DataFrame(rows)


def convergence_plot(study: optuna.Study, monitor_stop: int | None = None) -> Image.Image:
    """Objective per trial and the best so far: the picture of the search (a bare Figure drawn by Agg: no
    pyplot, so no process-wide backend is chosen)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    fig = Figure(figsize=(6, 3.5), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    if done:
        x = [t.number for t in done]
        y = [t.value for t in done]
        ax.scatter(x, y, label="trial validation loss", s=18)
        ax.step(x, np.minimum.accumulate(y), where="post", color="C1", label="best so far")
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if pruned:
        ax.scatter(pruned, [min(y) if done else 0] * len(pruned), marker="x", color="grey", label="pruned")
    if monitor_stop is not None:
        ax.axvline(monitor_stop, color="C3", linestyle="--", label="converged")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation loss")
    best = f": best {study.best_value:.4f} (trial {study.best_trial.number})" if done else ""
    ax.set_title(study.study_name + best)
    ax.legend(fontsize=8)
    fig.tight_layout()
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())

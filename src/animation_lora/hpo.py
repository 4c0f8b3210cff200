"""Hyper-parameter search with Optuna (seed: 50 trials on the character LoRA, a convergence monitor, and
best_hyperparameters.json reused by the other LoRA types).

The study lives in persistent storage (SQLite under data/06_models by default, or any RDB URL such as
PostgreSQL) so several workers on several machines share one study and a killed search resumes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import pandas as pd
from PIL import Image

log = logging.getLogger(__name__)

BEST_KEYS = ("learning_rate", "network_dim", "network_alpha", "optimizer_type", "lr_scheduler",
             "gradient_accumulation_steps", "max_train_epochs")


def open_study(search: dict[str, Any]) -> optuna.Study:
    """The study in its storage, created or resumed; an unreachable database is a clear error, not a hang."""
    url = search["storage"]
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(("postgresql", "mysql")):
        engine = {"connect_args": {"connect_timeout": 5}}
    else:  # SQLite: a worker waits for another's write lock instead of failing at once
        engine = {"connect_args": {"timeout": 60}}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as err:  # sqlalchemy / driver errors differ per database
        raise ConnectionError(f"Optuna storage '{url}' (training.search.storage) cannot be reached: {err}") from err
    pruners = {"median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
               "hyperband": optuna.pruners.HyperbandPruner(), "none": optuna.pruners.NopPruner()}
    if search["pruner"] not in pruners:
        raise ValueError(f"Unknown pruner '{search['pruner']}'; choose {', '.join(pruners)}")
    return optuna.create_study(study_name=search["study_name"], storage=storage, direction="minimize",
                               load_if_exists=True, pruner=pruners[search["pruner"]],
                               sampler=optuna.samplers.TPESampler(seed=search.get("seed", 0)))


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Parameters of one trial from the search space in params; `network_alpha_ratio` becomes
    network_alpha = ratio x network_dim (alpha relative to dim)."""
    params = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "int":
            params[name] = trial.suggest_int(name, spec["low"], spec["high"])
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        else:
            raise ValueError(f"Search space '{name}': unknown type '{kind}' (float, int, categorical)")
    if "network_alpha_ratio" in params:
        params["network_alpha"] = params.pop("network_alpha_ratio") * params.get("network_dim", 4)
    return params


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
            log.info("Search converged: no improvement over %.1f%% in %d trials", 100 * self.rel_tol, self.patience)
            study.stop()


def run_search(objective: Callable[[dict[str, Any], Callable[[int, float], bool]], float],
               search: dict[str, Any]) -> tuple[optuna.Study, ConvergenceMonitor]:
    """Run until `n_trials` trials have finished in the study (across all workers) or it converges.
    `objective(params, report)` trains and returns the validation loss; `report(step, value)` tells it
    whether the pruner stops the trial."""
    study = open_study(search)
    monitor = ConvergenceMonitor(search["convergence"]["patience"], search["convergence"]["rel_tol"])

    def wrapped(trial: optuna.Trial) -> float:
        params = suggest(trial, search["space"])

        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            return trial.should_prune()

        value = objective(params, report)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return value

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(states=finished))
    if done < search["n_trials"]:
        study.optimize(wrapped, n_trials=search["n_trials"] - done, callbacks=[
            optuna.study.MaxTrialsCallback(search["n_trials"], states=finished), monitor])
    return study, monitor


def best_hyperparameters(study: optuna.Study, defaults: dict[str, Any]) -> dict[str, Any]:
    """The seed's keys, from the best trial (defaults where the space did not search a key)."""
    params = dict(study.best_trial.params)
    if "network_alpha_ratio" in params:
        params["network_alpha"] = params.pop("network_alpha_ratio") * params.get("network_dim", defaults["network_dim"])
    return {k: params.get(k, defaults.get(k)) for k in BEST_KEYS}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "steps_reported": len(t.intermediate_values),
                     "last_step": max(t.intermediate_values) if t.intermediate_values else 0,
                     "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                     **{f"param_{k}": v for k, v in t.params.items()}})
    return pd.DataFrame(rows)


def convergence_plot(study: optuna.Study, monitor_stop: int | None = None) -> Image.Image:
    """Objective per trial and the best so far: the picture of the search."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
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
    ax.set_title(f"{study.study_name}: best {study.best_value:.4f} (trial {study.best_trial.number})" if done else study.study_name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    image = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return image

"""The Optuna search: the `training.search` parameter block, the study in its shared storage (created or
resumed, named by the dataset's and the search space's fingerprint), trials seeded by (seed, trial number),
counted across workers up to `n_trials`, pruned through `report`, stopped by the convergence monitor; and the
best trial's hyper-parameters."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import optuna

from ..convergence import plateaued
from ..experiments import tracker
from ..params import Count, block, parse
from ..training import TrainConfig

log = logging.getLogger(__name__)
# Optuna 4.9 renamed RetryFailedTrialCallback (the heartbeat's retry of a silent trial)
RETRY = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", optuna.storages.RetryFailedTrialCallback)

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
    n_trials: Count
    convergence: Convergence
    space: dict[str, dict[str, Any]]  # name -> a `Dimension`
    pruner: Literal["median", "hyperband", "none"] = "median"
    seed: int = 0
    trial_args: dict[str, Any] = field(default_factory=dict)  # training.args that differ in trials
    heartbeat_interval: int = 60  # seconds; a trial silent for 2x this is failed and retried
    max_retry: int = 1


class SurplusTrial(Exception):
    """A trial started after the study already had its `n_trials` (counting other workers' live ones)."""


class TrialSeededTPE(optuna.samplers.TPESampler):
    """TPE whose random state is re-seeded from (seed, trial number) before each trial: a restarted or a
    second worker does not replay the trials already drawn, and a study still draws reproducibly."""

    def __init__(self, seed: int):
        super().__init__(seed=seed, constant_liar=True)
        self._base_seed = seed

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seed = (self._base_seed * 1_000_003 + trial.number) % 2**31
        self._rng.rng.seed(seed)
        self._random_sampler._rng.rng.seed(seed + 1)
        super().before_trial(study, trial)


def search_fingerprint(search: Search, defaults: Mapping[str, Any]) -> str:
    """sha256 of what the trials search and train with (space, trial_args, the training args)."""
    spec = {"space": search.space, "trial_args": search.trial_args, "args": dict(defaults)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def check_dimension(dim: Dimension, path: str) -> None:
    """A searched dimension that Optuna could not draw from is an error naming it."""
    if dim.type in ("float", "int") and (dim.low is None or dim.high is None):
        raise ValueError(f"`{path}`: {dim.type} needs low and high")
    if dim.type in ("float", "int") and dim.low > dim.high:
        raise ValueError(f"`{path}`: low {dim.low} > high {dim.high}")
    if dim.type == "categorical" and not dim.choices:
        raise ValueError(f"`{path}`: categorical needs choices")


def network_alpha(params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`network_alpha_ratio` (alpha relative to dim) as kohya's network_alpha = ratio x network_dim, the dim
    searched or else the one the trials train with (`defaults`, the training args)."""
    params = dict(params)
    if "network_alpha_ratio" in params:
        dim = params.get("network_dim", defaults.get("network_dim", TrainConfig.network_dim))
        params["network_alpha"] = params.pop("network_alpha_ratio") * dim
    return params


def storage_url(storage: str) -> str:
    """`training.search.storage`: a URL, or `env:NAME` — the URL (with its password) read from the environment
    variable NAME, so that no secret is a parameter (parameters are logged to MLflow)."""
    if not storage.startswith("env:"):
        return storage
    name = storage[len("env:"):]
    if not os.environ.get(name):
        raise ValueError(f"`training.search.storage` is '{storage}': environment variable {name} is not set")
    return os.environ[name]


def without_password(text: str, url: str) -> str:
    """`text` with the database URL's password shown as *** wherever it appears (in the URL and in a driver's
    message alike)."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # not a URL sqlalchemy reads: nothing after its scheme is shown
        return text.replace(url, url.split("://", 1)[0] + "://…")
    return text.replace(password, "***") if password else text


def open_study(search: Search, study_name: str | None = None) -> optuna.Study:
    """The study in its storage, created or resumed; an unreachable database is a clear error, not a hang
    (and the error shows the URL without its password)."""
    url = storage_url(search.storage)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(("postgresql", "mysql")):
        engine = {"connect_args": {"connect_timeout": 5}}
    else:  # SQLite: a worker waits for another's write lock instead of failing at once
        engine = {"connect_args": {"timeout": 60}}
    try:
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=search.heartbeat_interval,
            heartbeat_stale_trial_callback=RETRY(max_retry=search.max_retry),
        )
    except Exception as err:  # sqlalchemy / driver errors differ per database
        raise ConnectionError(without_password(
            f"Optuna storage '{url}' (training.search.storage) cannot be reached: {err}", url
        )) from None
    pruners = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "hyperband": optuna.pruners.HyperbandPruner(),
        "none": optuna.pruners.NopPruner(),
    }
    name = study_name or search.study_name
    others = [n for n in optuna.get_all_study_names(storage) if n.startswith(search.study_name) and n != name]
    if others and name not in optuna.get_all_study_names(storage):
        log.info(
            "The dataset or the search space changed since study %s: starting the new study '%s'",
            ", ".join(f"'{n}'" for n in others), name,
        )
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        pruner=pruners[search.pruner],
        sampler=TrialSeededTPE(search.seed),
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
        if plateaued(values, self.patience, self.rel_tol):
            self.stopped_at = trial.number
            log.info(
                "Search converged: no improvement over %.1f%% in %d trials", 100 * self.rel_tol, self.patience
            )
            study.stop()


def run_search(
    objective: Callable[[dict[str, Any], Callable[[int, float], bool]], float],
    search: Search | Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    dataset_fingerprint: str | None = None,
) -> tuple[optuna.Study, ConvergenceMonitor]:
    """Run until `n_trials` trials have finished in the study (across all workers) or it converges.
    `objective(params, report)` trains and returns the validation loss; `report(step, value)` tells it
    whether the pruner stops the trial. `defaults`: the training args the trials start from. With
    `dataset_fingerprint` the study is `<study_name>-<12 hex of dataset + search space>`."""
    search = parse(Search, search, "training.search")
    space = {
        name: parse(Dimension, spec, f"training.search.space.{name}") for name, spec in search.space.items()
    }
    name = search.study_name
    if dataset_fingerprint:
        both = hashlib.sha256((dataset_fingerprint + search_fingerprint(search, defaults or {})).encode())
        name = f"{search.study_name}-{both.hexdigest()[:12]}"
    for key, dim in space.items():
        check_dimension(dim, f"training.search.space.{key}")
    study = open_study(search, name)
    monitor = ConvergenceMonitor(search.convergence.patience, search.convergence.rel_tol)

    states = optuna.trial.TrialState
    finished = (states.COMPLETE, states.PRUNED)

    def wrapped(trial: optuna.Trial) -> float:
        taken = [t for t in study.get_trials(states=(*finished, states.RUNNING)) if t.number != trial.number]
        if len(taken) >= search.n_trials:
            study.stop()
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number}: the study has its {search.n_trials} trials")
        params = suggest(trial, space, defaults or {})
        key = f"{study.study_name}/{trial.number}"
        with tracker().start(f"trial {trial.number}", "trial", key=key) as run:
            run.log_params(params)

            def report(step: int, value: float) -> bool:
                trial.report(value, step)
                run.log_metrics({"val_loss": value}, step)
                return trial.should_prune()

            value = objective(params, report)
            if trial.should_prune():
                run.set_tags({"state": "PRUNED"})
                raise optuna.TrialPruned()
            run.log_metrics({"objective": value}, 0)
            return value

    def count(*which) -> int:
        return len(study.get_trials(deepcopy=False, states=which))

    while count(*finished) < search.n_trials and monitor.stopped_at is None:
        if count(*finished, states.RUNNING) >= search.n_trials:
            # the rest are other workers' live trials: wait, failing (so retrying) any that went silent
            time.sleep(search.heartbeat_interval)
            optuna.storages.fail_stale_trials(study)
            continue
        study.optimize(
            wrapped,
            n_trials=search.n_trials - count(*finished),
            callbacks=[optuna.study.MaxTrialsCallback(search.n_trials, states=finished), monitor],
            catch=(SurplusTrial,),
        )
    return study, monitor


def best_hyperparameters(study: optuna.Study, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The keys the brief names, from the best trial (defaults where the space did not search a key)."""
    params = network_alpha(study.best_trial.params, defaults)
    return {k: params.get(k, defaults.get(k)) for k in BEST_KEYS}

"""Run tracking seen from a node, without importing mlflow: a node asks `tracker()` for the tracker a hook
installed (`hooks.MlflowTrackingHook` installs an MLflow one for the length of a Kedro run) and opens a run
per trained LoRA or per search trial *while* it trains, logging its real parameters, live curves and end
state. Outside a tracked Kedro run `tracker()` is a no-op, so nodes and library code run the same."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

# MLflow 3's UI opens an experiment without this tag on its (empty) GenAI traces page
EXPERIMENT_KIND, TRAINING = "mlflow.experimentKind", "custom_model_development"


class Run(Protocol):
    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None: ...


class NullRun:
    def log_metrics(self, metrics, step):
        pass

    def log_params(self, params):
        pass

    def set_tags(self, tags):
        pass

    def log_artifact(self, path, artifact_path=None):
        pass


class Tracker:
    """The no-op tracker; `start(name, kind)` is a context manager yielding a `Run`. The run ends FINISHED,
    or with the state set by `run.set_tags({"state": "PRUNED" | "FAILED"})`, or FAILED on an exception."""

    @contextlib.contextmanager
    def start(self, name: str, kind: str, key: str | None = None) -> Iterator[Run]:
        yield NullRun()


_current: list[Tracker] = [Tracker()]


def tracker() -> Tracker:
    return _current[-1]


def install(t: Tracker | None) -> None:
    """Set (or with None, reset to the no-op) the tracker nodes see."""
    _current[-1] = t or Tracker()

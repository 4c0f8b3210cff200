"""Project hooks."""

from __future__ import annotations

import contextlib
import difflib

from kedro.framework.hooks import hook_impl

from .experiments import EXPERIMENT_KIND, TRAINING, NullRun, Tracker, install


class MissingInputsHook:
    """Before a run, check that every `--params` key is one a node reads (a typo, `film_pth=…`, or a stray
    secret, `hf_token=…`, is refused instead of ignored and logged), and that the datasets this run reads from
    other pipelines exist, naming the pipeline to run first (e.g. `background` before `preprocessing` gives
    a clear error, not a missing version deep in a load)."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow's hook logs the run's parameters
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        from .params import secrets_in, unknown_runtime_params
        from .pipeline_registry import parameter_paths, producer_of

        runtime = run_params.get("runtime_params") or {}
        parameters = catalog.load("parameters") if "parameters" in catalog else {}
        secret = secrets_in(runtime) or secrets_in(parameters)
        if secret:  # refused before anything logs it; the value itself is never repeated
            raise ValueError(
                f"`{secret[0]}` holds a URL with a password: parameters are logged (MLflow, kedro-viz). "
                f"Put the URL in an environment variable and give `env:<NAME>` (e.g. "
                f"`training.search.storage: env:OPTUNA_STORAGE`)"
            )
        unknown = unknown_runtime_params(runtime, parameter_paths())
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(parameter_paths()), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"--params: no node reads `{unknown[0]}`{hint} (unknown: {', '.join(unknown)})")

        pinned = dict(run_params.get("load_versions") or {})
        for ds, version in pinned.items():
            if ds in catalog and not catalog.exists(ds):
                folder = getattr(catalog.get(ds), "_filepath", "")
                raise RuntimeError(
                    f"--load-versions: version '{version}' of dataset '{ds}' does not exist "
                    f"({folder}/{version})"
                )
        producers = {ds: producer_of(ds) for ds in sorted(pipeline.inputs())}
        missing = [(ds, p) for ds, p in producers.items() if p and not catalog.exists(ds)]
        if missing:
            lines = "; ".join(f"'{ds}' (run `kedro run --pipelines={p}` first)" for ds, p in missing)
            raise RuntimeError(f"Inputs of this run have not been produced yet: {lines}")


class CheckpointsHook:
    """Before a run, every checkpoint its backends are configured with must be on disk: all missing ones are
    listed at once with their parameters (not one at a time, after minutes of work)."""

    @hook_impl
    def before_pipeline_run(self, pipeline, catalog) -> None:
        from .backends.weights import missing_checkpoints

        names = sorted(ds for ds in pipeline.inputs() if ds.startswith("params:"))
        missing = missing_checkpoints({name[len("params:"):]: catalog.load(name) for name in names})
        if missing:
            lines = "; ".join(f"`{where}` is '{file}'" for where, file in missing)
            raise FileNotFoundError(f"Checkpoints not found (set them in conf/local/): {lines}")


class RunInterrupted(Exception):
    """Ctrl-C during a run, raised as an Exception (not KeyboardInterrupt) so that Kedro's error hooks run."""


def _interrupted(signum, frame) -> None:
    raise RunInterrupted("interrupted (Ctrl-C): the versions this run saved are kept aside as *.failed")


class FailedRunVersionsHook:
    """A failed, interrupted or killed run's saved versions never become "latest", and two runs never share a
    project's data folder.

    - On a pipeline error — Ctrl-C included, turned into `RunInterrupted` while the run lasts, since Kedro
      only tells its hooks about Exceptions — each versioned dataset this run saved is renamed
      `<folder>/<version>/<name>.failed` (kept for inspection; Kedro's latest-version glob `<folder>/*/<name>`
      no longer matches it), so the next run reads the last completed run's versions.
    - A `kill -9` or the OOM killer cannot be caught: the run's journal (`runs.RunJournal`, `data/.run.json`)
      lists every version before it is written; the next run finds the journal of a process that is gone and
      marks those versions failed the same way, before it reads anything. The journal is also the lock: a
      second run while one is going on is refused, naming it."""

    def __init__(self):
        self.catalog, self.saved, self._sigint, self.journal = None, [], None, None

    @hook_impl
    def after_context_created(self, context) -> None:
        from .runs import RunJournal

        self.journal = RunJournal(context.project_path / "data" / ".run.json")

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self.catalog, self.saved = catalog, []

    @hook_impl(tryfirst=True)  # the lock before any hook writes (kedro-mlflow's run, its parameters)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import signal
        import threading

        if self.journal is not None:
            self.journal.open(run_params.get("run_id") or "")
            try:
                self._check_one_film(run_params, pipeline, catalog)
            except Exception:
                self.journal.close()
                raise
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._sigint = signal.signal(signal.SIGINT, _interrupted)

    def _check_one_film(self, run_params, pipeline, catalog) -> None:
        """The latest versions this run reads must come from runs on this run's film (a `--from-nodes` run
        after a partial run on another film would mix two films); then record this run's film."""
        from kedro.io import AbstractVersionedDataset

        from .runs import mixed_films

        film = getattr(catalog.get("film"), "_path", None) if "film" in catalog else None
        inputs = {}
        for name in sorted(pipeline.inputs()):
            dataset = catalog.get(name) if name in catalog and not name.startswith("params:") else None
            if isinstance(dataset, AbstractVersionedDataset) and dataset.exists():
                inputs[name] = dataset.resolve_load_version()
        mixed = mixed_films(inputs, self.journal.runs, film)
        if mixed:
            raise RuntimeError(f"Versions from another film: {mixed}. Run the pipelines that make them on "
                               f"this film first (e.g. `kedro run --pipelines=preprocessing`), or give the "
                               f"film they were made from")
        self.journal.remember_film(run_params.get("run_id") or "", film)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        path = self._version_path(dataset_name)
        if path is not None and self.journal is not None:
            self.journal.record(path)  # before the first byte: a file a kill truncates is listed too

    def _version_path(self, name: str):
        from pathlib import Path

        from kedro.io import AbstractVersionedDataset

        dataset = self.catalog.get(name) if self.catalog is not None and name in self.catalog else None
        if not isinstance(dataset, AbstractVersionedDataset) or not dataset._version:
            return None
        return Path(dataset._get_versioned_path(dataset.resolve_save_version()))

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore_sigint()
        if self.journal is not None:
            self.journal.close()

    def _restore_sigint(self) -> None:
        import signal

        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self.saved.append(dataset_name)

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        import logging

        from .runs import set_aside

        marked = [name for name in dict.fromkeys(self.saved)
                  if (path := self._version_path(name)) is not None and set_aside(path)]
        if marked:  # one line, not one per dataset
            logging.getLogger(__name__).warning(
                "Run failed (%s): the %d versions it saved are marked failed (<file>.failed in their version "
                "folders) and are not used as latest: %s",
                type(error).__name__, len(marked), ", ".join(marked),
            )
        self.saved = []
        self._restore_sigint()
        if self.journal is not None:
            self.journal.close()


class MlflowTracker(Tracker):
    """Child runs of the Kedro run's MLflow run, created when a LoRA or a trial starts: its parameters, live
    metrics, and its end state (FINISHED; KILLED for a pruned trial; FAILED on an error)."""

    STATUS = {"PRUNED": "KILLED", "FAILED": "FAILED", "COMPLETE": "FINISHED"}

    def __init__(self, hook: MlflowTrackingHook):
        self.hook, self.open_runs = hook, set()

    @contextlib.contextmanager
    def start(self, name: str, kind: str, key: str | None = None):
        import mlflow

        parent = mlflow.active_run()
        if parent is None:
            yield NullRun()
            return
        client = mlflow.MlflowClient()
        experiment = client.get_experiment(parent.info.experiment_id)
        if experiment.tags.get(EXPERIMENT_KIND) != TRAINING:  # MLflow 3's UI opens it on its runs
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, TRAINING)
        tags = {"mlflow.parentRunId": parent.info.run_id, "kind": kind, "key": key or name}
        info = client.create_run(parent.info.experiment_id, tags=tags, run_name=name).info
        run = ClientRun(client, info.run_id)
        self.open_runs.add(info.run_id)
        if self.hook.namespace and kind == "lora":
            self.hook.lora_runs[self.hook.namespace] = info.run_id
        try:
            yield run
        except BaseException:
            client.set_terminated(info.run_id, self.STATUS.get(run.state, "FAILED"))
            raise
        else:
            client.set_terminated(info.run_id, self.STATUS.get(run.state, "FINISHED"))
        finally:
            self.open_runs.discard(info.run_id)


class ClientRun:
    def __init__(self, client, run_id: str):
        self.client, self.run_id, self.state = client, run_id, "COMPLETE"

    def log_metrics(self, metrics, step: int) -> None:
        for k, v in metrics.items():
            if v is not None and v == v:  # NaN (no validation set) is not a point
                self.client.log_metric(self.run_id, k, float(v), step=int(step))

    def log_params(self, params) -> None:
        for k, v in params.items():
            self.client.log_param(self.run_id, k, v)

    def set_tags(self, tags) -> None:
        self.state = tags.get("state", self.state)
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, path, artifact_path)


class MlflowTrackingHook:
    """Tracking glue, so nodes never import mlflow: during a run, nodes get an `MlflowTracker`
    (`experiments.tracker()`) that opens one child run per trained LoRA and per search trial while it runs. A
    saved dataset whose metadata has `mlflow: {artifact_path: …}` is logged as an artifact of the Kedro run,
    and of its namespace's LoRA run (the LoRA file, its samples). Child runs open at an error end FAILED."""

    def __init__(self):
        self.catalog, self.namespace, self.lora_runs = None, None, {}
        self.tracker = MlflowTracker(self)

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self.catalog = catalog

    @hook_impl
    def before_pipeline_run(self) -> None:
        self.lora_runs = {}
        install(self.tracker)

    @hook_impl
    def before_node_run(self, node) -> None:
        self.namespace = node.namespace

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data, node) -> None:
        import mlflow

        if self.catalog is None or mlflow.active_run() is None:
            return
        dataset = self.catalog.get(dataset_name)
        spec = (getattr(dataset, "metadata", None) or {}).get("mlflow")
        if spec:
            path = dataset._get_load_path() if hasattr(dataset, "_get_load_path") else dataset._filepath
            mlflow.log_artifact(str(path), artifact_path=spec.get("artifact_path"))
            child = self.lora_runs.get(dataset_name.rpartition(".")[0])
            if child:
                mlflow.MlflowClient().log_artifact(child, str(path), spec.get("artifact_path"))

    @hook_impl
    def after_pipeline_run(self) -> None:
        install(None)

    @hook_impl
    def on_pipeline_error(self) -> None:
        import mlflow

        for run_id in list(self.tracker.open_runs):
            mlflow.MlflowClient().set_terminated(run_id, "FAILED")
        install(None)

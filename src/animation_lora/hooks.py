"""Project hooks."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl


class MissingInputsHook:
    """Before a run, check that the datasets this run reads from other pipelines exist, and name the
    pipeline to run first (e.g. `background` before `preprocessing` gives a clear error, not a missing
    version deep in a load)."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        from .pipeline_registry import producer_of

        producers = {ds: producer_of(ds) for ds in sorted(pipeline.inputs())}
        missing = [(ds, p) for ds, p in producers.items() if p and not catalog.exists(ds)]
        if missing:
            lines = "; ".join(f"'{ds}' (run `kedro run --pipeline={p}` first)" for ds, p in missing)
            raise RuntimeError(f"Inputs of this run have not been produced yet: {lines}")


class MlflowTrackingHook:
    """Tracking glue, so nodes never import mlflow: a saved dataset whose metadata has
    `mlflow: {artifact_path: …}` is logged as an artifact of the active run (its saved version), and the
    hyper-parameter search's trials become child runs of the run, one per trial, to compare side by side."""

    def __init__(self):
        self.catalog = None

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self.catalog = catalog

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

    @hook_impl
    def after_node_run(self, node, outputs: dict) -> None:
        import mlflow

        trials = outputs.get("hpo_trials")
        if trials is None or mlflow.active_run() is None:
            return
        for row in trials.itertuples():
            with mlflow.start_run(run_name=f"trial {row.number}", nested=True):
                mlflow.log_params({k[6:]: v for k, v in row._asdict().items() if k.startswith("param_")})
                mlflow.set_tag("optuna_state", row.state)
                for step, value in (row.intermediate or {}).items():
                    if value is not None:
                        mlflow.log_metric("val_loss", float(value), step=int(step))
                if row.value is not None and row.value == row.value:
                    mlflow.log_metric("objective", float(row.value))

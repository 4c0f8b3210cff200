"""Project hooks."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl


class MissingInputsHook:
    """Before a run, check that the datasets this run reads from other pipelines exist, and name the
    pipeline to run first (e.g. `background` before `preprocessing` gives a clear error, not a missing
    version deep in a load)."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import importlib
        import pkgutil

        from . import pipelines as package

        # every pipeline (kedro's registry holds only the ones this run asked for)
        producer = {}
        for info in pkgutil.iter_modules(package.__path__):
            created = importlib.import_module(f"{package.__name__}.{info.name}").create_pipeline()
            for output in created.all_outputs():
                producer.setdefault(output, info.name)
        missing = [(ds, producer[ds]) for ds in sorted(pipeline.inputs())
                   if ds in producer and not catalog.exists(ds)]
        if missing:
            lines = "; ".join(f"'{ds}' (run `kedro run --pipeline={p}` first)" for ds, p in missing)
            raise RuntimeError(f"Inputs of this run have not been produced yet: {lines}")

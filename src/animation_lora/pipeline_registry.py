"""Project pipelines: each one by name; `__default__` runs them all, so `kedro run` is the whole demo.

The registry is explicit (not `find_pipelines`) so that one place lists every pipeline: Kedro builds only the
requested ones for a run, and the missing-inputs hook asks this registry which pipeline makes a dataset."""

from __future__ import annotations

from functools import lru_cache

from kedro.pipeline import Pipeline

from .pipelines import background, composition, export, expression, pose, preprocessing, training

PIPELINES = {
    "preprocessing": preprocessing,
    "background": background,
    "pose": pose,
    "expression": expression,
    "training": training,
    "composition": composition,
    "export": export,
}


@lru_cache(maxsize=1)
def all_pipelines() -> dict[str, Pipeline]:
    """Every pipeline, built once per process."""
    return {name: package.create_pipeline() for name, package in PIPELINES.items()}


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = dict(all_pipelines())
    pipelines["__default__"] = sum(pipelines.values())
    return pipelines


def parameter_paths() -> set[str]:
    """Every parameter path a node of any pipeline reads (`preprocessing.sampling`, `diffusion`), and
    `film_path` (the catalog's input film)."""
    inputs = {name for p in all_pipelines().values() for name in p.inputs()}
    return {n.removeprefix("params:") for n in inputs if n.startswith("params:")} | {"film_path"}


def producer_of(dataset: str) -> str | None:
    """The pipeline that writes `dataset` (None when no pipeline does: a raw input)."""
    return next((name for name, p in all_pipelines().items() if dataset in p.all_outputs()), None)

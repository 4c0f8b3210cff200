"""The whole demo chain on the tiny film — preprocessing, background, training, composition — through
KedroSession, checking what the composition pipeline writes; a kohya LoRA dropped in the `extra_loras` folder
is composed with the trained ones."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, TINY_PARAMS, run_session


def saved(data: Path, name: str) -> Path:
    """The file of the (only) saved version of a versioned dataset."""
    return next((data / name).glob("*/*"))


@pytest.mark.slow
def test_compose_the_trained_loras_into_images_scores_and_a_report(kedro_project):
    for pipeline in ("preprocessing", "background", "pose", "expression", "training"):
        run_session(kedro_project, pipeline)
    data = kedro_project / "data"
    (data / "01_raw" / "extra_loras").mkdir(parents=True)
    trained = saved(data, "06_models/character_lora.safetensors")
    shutil.copy(trained, data / "01_raw/extra_loras/twin.safetensors")
    run_session(kedro_project, "composition")
    table = pd.read_parquet(saved(data, "07_model_output/composition_table.parquet"))
    strategies = {
        "base",
        "solo:character",
        "solo:background",
        "solo:twin",
        "solo:pose",
        "solo:expression",
        "merge",
        "fused",
        "switch",
        "composite",
        "regional",
    }
    assert set(table.strategy) == strategies and len(table) == len(strategies)  # 1 prompt x 1 sample
    # the demo template, in the demo base's caption words: [character], full body, [pose], [expression], …
    prompt = table.prompt.iloc[0]
    assert re.match(r"character_\w+, full body, \w+ pose, \w+ expression, scene_\w+$", prompt), prompt
    (images,) = (data / "07_model_output" / "compositions").glob("*/compositions")
    assert len(list(images.glob("*.png"))) == len(table)
    metrics = json.loads(saved(data, "08_reporting/composition_metrics.json").read_text())
    assert set(metrics["per_strategy"]) == strategies
    # the probes, trained on the tiny film's ground truth, judge: per-slot recall, all-present, chance
    probe_metrics = json.loads(saved(data, "08_reporting/probe_metrics.json").read_text())
    assert probe_metrics["probes"]["location"]["held_out_accuracy"] >= 0.9
    assert metrics["judge"] == "probes" and metrics["reference"] == "base"
    assert {"character", "background"} <= set(metrics["targets"]) == set(metrics["chance"]["per_slot"])
    for values in metrics["per_strategy"].values():
        assert values["all_present"] in (0.0, 0.5, 1.0) or values["all_present"] is None
        assert {f"{slot}_present" for slot in metrics["targets"]} <= set(values)

    # the weight search: every candidate in its ranges, the best one is the best candidate, the defaults'
    # score re-measured to the same value
    tuned = json.loads(saved(data, "07_model_output/tuned_weights.json").read_text())
    search = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_composition.yml").read_text())
    ranges = {
        **{n: [w, w] for n, w in tuned["default_weights"].items()},
        **search["composition"]["weight_search"]["ranges"],
    }
    evaluated = tuned["evaluated"]
    assert len(evaluated) == tuned["trials"] == TINY_PARAMS["composition"]["weight_search"]["n_trials"]
    assert tuned["default_weights"] == {"character": 1.0, "background": 0.8, "pose": 0.7, "expression": 0.6,
                                        "twin": 1.0}
    assert evaluated[0]["weights"] == tuned["default_weights"]
    assert evaluated[0]["score"] == tuned["default_score"]
    for weights in [tuned["best_weights"], *(e["weights"] for e in evaluated)]:
        assert set(weights) == set(tuned["default_weights"])
        assert all(ranges[n][0] <= w <= ranges[n][1] for n, w in weights.items()), weights
    best = max(evaluated, key=lambda e: (e["score"], e["share"]))["weights"]  # the share breaks ties
    assert tuned["best_weights"] == {n: round(w, 3) for n, w in best.items()}

    report = saved(data, "08_reporting/composition_report.html").read_text()
    assert report.startswith("<!doctype html>")
    assert report.count("<img src='data:image/png;base64,") == len(table)
    assert all(s in report for s in strategies) and "twin.safetensors (extra_loras)" in report
    assert saved(data, "08_reporting/composition_grid.png").stat().st_size > 0

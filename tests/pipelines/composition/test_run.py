"""The whole demo chain on the tiny film — preprocessing, background, training, composition — through
KedroSession, checking what the composition pipeline writes."""

import json

import pandas as pd

from tests.conftest import run_session


def test_compose_the_trained_loras_into_images_scores_and_a_report(kedro_project):
    for pipeline in ("preprocessing", "background", "training", "composition"):
        run_session(kedro_project, pipeline)
    data = kedro_project / "data"
    table = pd.read_parquet(next((data / "07_model_output" / "composition_table.parquet").glob("*/*")))
    strategies = {"base", "solo:character", "solo:background", "merge", "fused", "switch", "composite"}
    assert set(table.strategy) == strategies and len(table) == len(strategies)  # 1 prompt x 1 sample
    assert table.prompt.iloc[0].startswith("character_") and " in scene_" in table.prompt.iloc[0]
    (images,) = (data / "07_model_output" / "compositions").glob("*/compositions")
    assert len(list(images.glob("*.png"))) == len(table)
    metrics = json.loads(next((data / "08_reporting" / "composition_metrics.json").glob("*/*.json")).read_text())
    assert set(metrics["per_strategy"]) == strategies
    tuned = json.loads(next((data / "07_model_output" / "tuned_weights.json").glob("*/*.json")).read_text())
    assert tuned["best_weights"]["character"] == 1.0 and 0.7 <= tuned["best_weights"]["background"] <= 0.9
    report = next((data / "08_reporting" / "composition_report.html").glob("*/*.html")).read_text()
    assert report.startswith("<!doctype html>") and report.count("<img src='data:image/png;base64,") == len(table)
    assert all(s in report for s in strategies)
    assert next((data / "08_reporting" / "composition_grid.png").glob("*/*.png")).stat().st_size > 0

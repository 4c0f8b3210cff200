"""`kedro run --pipelines=expression` on the tiny demo film (after preprocessing), through a real
KedroSession: face crops, the expression table, contact sheets, one kohya folder per expression found, and
metrics against the demo's true expressions."""

import json

import pandas as pd
import pytest

from tests.conftest import run_session

TINY = {"expression": {"dataset": {"min_images": 2, "target_size": 6}}}


def load(folder, name):
    (path,) = folder.glob(f"*/{name}")
    return path


@pytest.mark.slow
def test_expression_run_on_the_tiny_demo(kedro_project):
    run_session(kedro_project, "preprocessing")
    run_session(kedro_project, "expression", runtime_params=TINY)
    data = kedro_project / "data"
    metrics = json.loads(load(data / "08_reporting" / "expression_metrics.json", "expression_metrics.json")
                         .read_text())
    assert metrics["ground_truth"] is True and metrics["backend"] == "landmarks"
    assert metrics["face_detection_recall"] >= 0.9
    # FLOOR: the tiny film's faces are ~30 px; the 512x288 demo reaches 0.96 (docs/metrics.md)
    assert metrics["accuracy"] >= FLOOR
    assert metrics["kept_accuracy"] >= 0.9  # what goes into the datasets is right
    assert set(metrics["accuracy_per_backend"]) == {"landmarks", "fer", "facex"}
    table = pd.read_parquet(load(data / "04_feature" / "expression_table.parquet",
                                 "expression_table.parquet"))
    assert (table.reason == "").sum() == sum(metrics["kept"].values()) > 0
    assert set(table.backend) == {"landmarks"}
    crops = load(data / "04_feature" / "face_crops", "face_crops")
    assert len(list(crops.glob("*.png"))) == metrics["faces"]
    each = load(data / "05_model_input" / "expression_loras", "expression_loras")
    assert {p.name for p in each.iterdir()} == {e for e, n in metrics["kept"].items() if n >= 2}
    for caption in (each / "happy" / "images").glob("*.txt"):
        text = caption.read_text()
        assert text.startswith("happy expression") and "character_" not in text
    assert list((data / "08_reporting" / "expression_contact_sheets").glob("*/*/happy.png"))


FLOOR = 0.65  # measured 0.71 (12 of 17 faces; fer and facex 0.65)

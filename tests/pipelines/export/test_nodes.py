"""The export node: every LoRA type's LoRAs and datasets under plain names, a type with nothing to teach
left out, contact sheets prefixed by their kind, each stage's metrics."""

import numpy as np
import pytest

from animation_lora.lora_dataset import TrainingSet, nothing_to_teach
from animation_lora.lora_format import LoraFile
from animation_lora.pipelines.export.nodes import collect_results


def dataset(name: str) -> TrainingSet:
    return TrainingSet(name, name, {"f000001_0": np.zeros((8, 8, 3), np.uint8)}, {"f000001_0": name},
                       {"datasets": []})


def inputs(**override):
    lora = LoraFile({}, {"ss_output_name": "x"})
    values = {
        "character_loras": {"roxanne": lora}, "background_loras": {"restaurant": lora},
        "pose_loras": {}, "expression_loras": {"happy": lora},
        "character_datasets": {"roxanne": dataset("roxanne")},
        "background_datasets": {"restaurant": dataset("restaurant")},
        "pose_datasets": {}, "expression_datasets": {"happy": dataset("happy")},
        "character_sheets": {"character_0": "sheet"}, "action_sheets": {"running": "sheet"},
        "pose_metrics": {"ground_truth": False}, "expression_metrics": {"kept": {"happy": 10}},
    }
    return {**values, **override}


def test_every_type_under_plain_names_and_a_type_with_nothing_to_teach_left_out():
    skipped = {"pose": nothing_to_teach("pose", "no requested action: legs not visible")}
    results = collect_results("<html>", **inputs(pose_datasets=skipped))
    assert sorted(results["loras"]) == ["happy", "restaurant", "roxanne"]
    assert sorted(results["datasets"]) == ["happy", "restaurant", "roxanne"]
    assert sorted(results["sheets"]) == ["action_running", "character_0"]
    assert results["metrics"] == {"pose": {"ground_truth": False}, "expression": {"kept": {"happy": 10}}}


def test_two_types_with_one_name_is_an_error():
    lora = LoraFile({}, {})
    with pytest.raises(ValueError, match=r"named \['happy'\]: rename one in `names`"):
        collect_results("<html>", **inputs(character_loras={"happy": lora}))

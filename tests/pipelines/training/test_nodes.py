"""The training nodes' shapes: `train_each` keeps every name's outputs, never training the main LoRA again."""

import pandas as pd
from PIL import Image

from animation_lora.lora_dataset import TrainingSet, nothing_to_teach
from animation_lora.lora_format import LoraFile
from animation_lora.pipelines.training import per_name


def dataset(name):
    return TrainingSet(name, name, {}, {}, {"datasets": []})


def outputs(name, steps):
    """What `train` returns for `name`: a LoRA, one per-epoch save, a history, metrics, samples."""
    history = pd.DataFrame({"step": list(range(steps)), "loss": [0.5] * steps})
    return {"lora": LoraFile({}, {"ss_output_name": name}),
            "lora_epochs": {f"{name}-000001": LoraFile({}, {})}, "training_history": history,
            "training_metrics": {}, "training_samples": Image.new("RGB", (2, 2))}


def test_train_each_keeps_every_output_and_trains_the_main_lora_once(monkeypatch):
    trained = []

    def fake_train(data, best, training, diffusion):
        trained.append(data.name)
        return outputs(data.name, 3)

    monkeypatch.setattr(per_name, "train", fake_train)
    main = outputs("marco", 2)
    names = {"marco": dataset("marco"), "nina": dataset("nina"),
             "ghost": nothing_to_teach("ghost", "no faces")}
    out = per_name.train_each(names, dataset("marco"), main["lora"], main["lora_epochs"],
                              main["training_history"], main["training_samples"], {}, None, {})
    assert trained == ["nina"]  # the main LoRA comes in trained; a dataset with nothing to teach is left out
    assert sorted(out["loras"]) == sorted(out["samples_by_name"]) == ["marco", "nina"]
    assert out["loras"]["marco"] is main["lora"]
    assert sorted(out["lora_epochs_by_name"]) == ["marco-000001", "nina-000001"]
    history = out["training_history_by_name"]
    assert list(history.columns[:2]) == ["name", "step"] and history.name.value_counts().to_dict() == {
        "nina": 3, "marco": 2}


def test_a_skipped_main_lora_gives_empty_outputs(monkeypatch):
    monkeypatch.setattr(per_name, "train", lambda *a: outputs("x", 1))
    skipped = LoraFile.not_trained("pose", "no pose")
    out = per_name.train_each({}, dataset("pose"), skipped, {}, pd.DataFrame(), Image.new("RGB", (2, 2)), {},
                              None, {})
    assert out["loras"] == out["lora_epochs_by_name"] == out["samples_by_name"] == {}
    assert list(out["training_history_by_name"].columns) == ["name", "step"]

"""One dataset per LoRA (a folder of kohya folders), and the export folder people pick results up from."""

import json
import os
import stat
import tomllib

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import Version

from animation_lora.datasets import ExportFolder, KohyaDatasetsFolder, read_lora
from animation_lora.datasets.export import _exchange, replace_folder, restore_interrupted_swap
from animation_lora.lora_dataset import build_lora_dataset, selected_clusters
from animation_lora.lora_format import LoraFile

PARAMS = {"target_size": 2, "resolution": 64, "caption_prefix": "character"}


def training_set(name):
    images = {f"{name}_{k}": np.full((8, 8, 3), k * 40, np.uint8) for k in range(3)}
    captions = {i: f"{name}, character" for i in images}
    return build_lora_dataset(name, name, images, captions, {i: 1.0 for i in images}, None, PARAMS)


def test_a_folder_of_kohya_folders_round_trips_one_dataset_per_name(tmp_path):
    data = {"roxanne": training_set("roxanne"), "bernard": training_set("bernard")}
    folder = KohyaDatasetsFolder(str(tmp_path / "character_loras"), version=Version(None, None))
    folder.save(data)
    loaded = folder.load()
    assert sorted(loaded) == ["bernard", "roxanne"]
    assert {n: (d.name, d.trigger, sorted(d.images)) for n, d in loaded.items()} == {
        n: (n, n, sorted(d.images)) for n, d in data.items()
    }


def test_every_cluster_above_the_size_gets_a_lora_and_unknown_names_are_errors():
    clusters = pd.DataFrame({"cluster": ["a"] * 6 + ["b"] * 5 + ["c"] * 2 + ["noise"] * 9})
    assert selected_clusters(clusters, None, 5, "character") == ["a", "b"]
    assert selected_clusters(clusters, ["c"], 5, "character") == ["c"]
    with pytest.raises(ValueError, match=r"named \['x'\]; the clusters are \['a', 'b', 'c'\]"):
        selected_clusters(clusters, ["x"], 5, "character")


def test_export_writes_plain_names_with_the_users_umask_and_a_relative_image_dir(tmp_path):
    previous = os.umask(0o027)  # issue 25: results keep the user's umask (they were chmod-ed 755/644)
    try:
        _export_twice(tmp_path)
    finally:
        os.umask(previous)


def _export_twice(tmp_path):
    lora = LoraFile({"lora_unet_x.alpha": torch.tensor(4.0)}, {"ss_output_name": "roxanne"})
    sdxl = LoraFile({"lora_unet_input_blocks_4_1_proj_in.alpha": torch.tensor(4.0)},
                    {"ss_base_model_version": "sdxl_base_v1-0", "modelspec.trigger_phrase": "restaurant",
                     "ss_sd_model_name": "sdxl:sd_xl_base_1.0.safetensors"})
    export = ExportFolder(str(tmp_path / "export"), film_path="/films/Megamind.avi")
    saved = KohyaDatasetsFolder(str(tmp_path / "character_loras"), version=Version(None, None))
    saved.save({"roxanne": training_set("roxanne")})  # as the pipeline hands it on: loaded from its version
    results = {
        "loras": {"roxanne": lora, "restaurant": sdxl},
        "datasets": saved.load(),
        "sheets": {"character_roxanne": np.zeros((4, 4, 3), np.uint8)},
        "report": "<html></html>",
        "metrics": {"character": {"ground_truth": False}},
    }
    export.save(results)
    export.save(results)  # a second export replaces the first
    root = tmp_path / "export" / "Megamind"
    names = sorted(p.name for p in (root / "loras").iterdir())
    assert names == ["restaurant.json", "restaurant.safetensors", "roxanne.json", "roxanne.safetensors"]
    # which base each is for, in A1111's sidecar (its "sd version" hides a LoRA of the other architecture)
    restaurant = json.loads((root / "loras" / "restaurant.json").read_text())
    assert restaurant["sd version"] == "SDXL" and restaurant["activation text"] == "restaurant"
    assert "sdxl:sd_xl_base_1.0.safetensors" in restaurant["description"]
    assert json.loads((root / "loras" / "roxanne.json").read_text())["sd version"] == "SD1"
    assert read_lora(root / "loras" / "roxanne.safetensors").metadata["ss_output_name"] == "roxanne"
    toml = tomllib.loads((root / "datasets" / "roxanne" / "dataset.toml").read_text())
    assert toml["datasets"][0]["subsets"][0]["image_dir"] == "images"
    assert (root / "contact_sheets" / "character_roxanne.png").exists() and (root / "report.html").exists()
    for path in root.rglob("*"):  # the user's umask (027 here), never opened to everyone
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o750 if path.is_dir() else 0o640), path
    assert not list((tmp_path / "export").glob("*.partial")) and not list((tmp_path / "export").glob("*.old"))


def test_results_are_replaced_in_one_step_and_a_kill_between_two_renames_is_undone(tmp_path):
    old, new = tmp_path / "film", tmp_path / "film.partial"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "report.html").write_text(text)
    assert _exchange(new, old)  # Linux: one atomic step, readers never see no folder
    assert (old / "report.html").read_text() == "new" and (new / "report.html").read_text() == "old"
    replace_folder(new, old)  # exchanged back, the other removed
    assert (old / "report.html").read_text() == "old" and not new.exists()
    # the two-rename fallback killed between its renames: the previous results come back
    old.rename(tmp_path / "film.old")
    restore_interrupted_swap(old)
    assert (old / "report.html").read_text() == "old" and not (tmp_path / "film.old").exists()

"""A film that leaves few or no clean plates (issue 21): the background stage completes and says why,
never an error with advice that does not fit."""

import numpy as np
import pandas as pd

from animation_lora.background.plates import PlateCrop
from animation_lora.background.purity import plates_lost
from animation_lora.clustering import ClusteringParams
from animation_lora.params import parse
from animation_lora.pipelines.background.nodes import (
    SceneDatasetParams,
    build_background_datasets,
    cluster_scenes,
    drop_leaking_plates,
)

CLUSTERING = parse(ClusteringParams, {"min_cluster_size": 15, "min_samples": 3},
                   "background.scene_clustering")
DATASET = parse(SceneDatasetParams, {"target_size": 6, "min_images": 5, "resolution": 64},
                "background.scene_dataset")


def plates(n: int, usable: bool) -> pd.DataFrame:
    return pd.DataFrame({"frame_id": [f"f{k:06d}" for k in range(n)],
                         "hole_fraction": 0.2 if usable else 0.9, "usable": usable,
                         "reason": "" if usable else "hole covers 90% of the plate", "shot": 0})


def residue(n: int, rejected: int) -> pd.DataFrame:
    return pd.DataFrame({"frame_id": [f"f{k:06d}" for k in range(n)],
                         "residue_instances": [1 if k < rejected else 0 for k in range(n)],
                         "residue_pixels": [900 if k < rejected else 0 for k in range(n)],
                         "kept": [k >= rejected for k in range(n)], "reason": ""})


def frame_index(n: int) -> pd.DataFrame:
    return pd.DataFrame({"frame_id": [f"f{k:06d}" for k in range(n)], "shot": 0, "sharpness": 1.0})


def empty_datasets(table: pd.DataFrame, report: pd.DataFrame):
    no_scene = pd.DataFrame(columns=["frame_id", "cluster", "similarity", "assigned_by"])
    no_embedding = pd.DataFrame(columns=["frame_id", "embedding"])
    return build_background_datasets({}, {}, no_scene, no_embedding, frame_index(22), table, report, DATASET,
                                     PlateCrop(enabled=False), {"backend": "template", "template": {}}, {},
                                     None)


def test_no_clean_plate_gives_no_background_lora_and_the_real_cause():
    main, each = empty_datasets(plates(22, True), residue(22, 22))
    assert each == {} and not main.images
    assert main.skipped == ("0 of 22 plates passed the residue check: 22 still show a character, "
                            "0 unreadable — see rejected_plates and residue_report")
    main, _ = empty_datasets(plates(22, False), residue(0, 0))
    assert main.skipped.startswith("0 of 22 plates are usable ({'hole covers 90% of the plate': 22})")
    assert plates_lost(plates(0, True), residue(0, 0)).startswith("the film gave no background layer")
    kept, datasets, report = drop_leaking_plates(main, each, {"backend": "grabcut"}, None)
    assert kept is main and datasets == {} and report.empty and "reason" in report


def test_a_few_plates_are_one_scene_trained_with_a_warning(caplog):
    rng = np.random.default_rng(0)
    ids = [f"f{k:06d}" for k in range(3)]
    embeddings = pd.DataFrame({"frame_id": ids, "embedding": list(rng.normal(size=(3, 8)))})
    clusters = cluster_scenes(embeddings, frame_index(3), CLUSTERING, None)
    assert clusters.cluster.tolist() == ["scene_0"] * 3 and set(clusters.assigned_by) == {"few plates"}
    images = {i: np.full((64, 96, 3), 100 + k, np.uint8) for k, i in enumerate(ids)}
    holes = {i: np.zeros((64, 96), np.uint8) for i in ids}
    main, each = build_background_datasets(images, holes, clusters, embeddings, frame_index(3),
                                           plates(3, True), residue(3, 0), DATASET, PlateCrop(enabled=False),
                                           {"backend": "template", "template": {}}, {}, None)
    assert main.name == "scene_0" and len(main.images) == 3 and list(each) == ["scene_0"]
    assert "has 3 plates (`min_images` 5): its LoRA is trained on them" in caplog.text

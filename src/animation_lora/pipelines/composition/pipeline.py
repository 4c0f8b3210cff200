"""`kedro run --pipelines=composition`: the base model + N LoRAs with weights -> images for every strategy,
per-concept scores, a weight search, a grid and an HTML report."""

from kedro.pipeline import Node, Pipeline

from ...lora_format import LORA_TYPES
from .nodes import (
    composition_grid,
    composition_report,
    concept_centroids,
    gather_loras,
    generate_compositions,
    probe_targets,
    score_compositions,
    train_concept_probes,
    tune_weights,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(gather_loras, {"extra_loras": "extra_loras", "composition": "params:composition",
                            **{kind: f"{kind}.lora" for kind in LORA_TYPES},
                            **{f"{kind}_by_name": f"{kind}.loras" for kind in LORA_TYPES}},
             "lora_set", name="gather_loras_node"),
        Node(generate_compositions, ["lora_set", "params:composition", "params:diffusion"],
             ["compositions", "composition_table"], name="generate_compositions_node"),
        Node(concept_centroids,
             ["character.lora_dataset", "character.lora_datasets", "background.lora_dataset",
              "background.lora_datasets", "params:composition", "params:embedding"],
             "concept_centroids", name="concept_centroids_node"),
        Node(train_concept_probes, ["film", "demo_ground_truth", "params:probes", "params:composition",
                                    "params:embedding"],
             ["concept_probes", "probe_metrics"], name="train_concept_probes_node"),
        Node(probe_targets, {"concept_probes": "concept_probes", "lora_set": "lora_set",
                             "composition": "params:composition",
                             **{kind: f"{kind}.lora_dataset" for kind in LORA_TYPES},
                             **{f"{kind}_by_name": f"{kind}.lora_datasets" for kind in LORA_TYPES}},
             "concept_targets", name="probe_targets_node"),
        Node(score_compositions, ["compositions", "composition_table", "concept_centroids", "concept_probes",
                                  "concept_targets", "probe_metrics", "params:segmentation",
                                  "params:embedding", "params:composition"],
             ["composition_scores", "composition_metrics"], name="score_compositions_node"),
        Node(tune_weights, ["lora_set", "concept_centroids", "concept_probes", "concept_targets",
                            "params:composition", "params:diffusion", "params:segmentation",
                            "params:embedding"],
             ["tuned_weights", "weight_search_grid"], name="tune_weights_node"),
        Node(composition_grid, ["compositions", "composition_table"], "composition_grid",
             name="composition_grid_node"),
        Node(composition_report, ["compositions", "composition_scores", "composition_metrics",
                                  "tuned_weights", "lora_set"], "composition_report",
             name="composition_report_node"),
    ])

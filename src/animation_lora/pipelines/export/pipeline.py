"""`kedro run --pipelines=export`: the run's results for people, in `data/09_export/<film name>/`."""

from kedro.pipeline import Node, Pipeline

from .nodes import collect_results


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(collect_results,
             ["character.loras", "background.loras", "character.lora_datasets", "background.lora_datasets",
              "character_cluster_sheets", "scene_cluster_sheets", "composition_report",
              "character_metrics", "segmentation_metrics", "background_metrics"],
             "results", name="export_results_node"),
    ])

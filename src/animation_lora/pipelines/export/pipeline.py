"""`kedro run --pipelines=export`: the run's results for people, in `data/09_export/<film name>/`."""

from kedro.pipeline import Node, Pipeline

from ...lora_format import LORA_TYPES
from ..training.pipeline import TRAINED_ON
from .nodes import collect_results

SHEETS = {"character": "character_cluster_sheets", "scene": "scene_cluster_sheets",  # kind -> dataset
          "action": "action_contact_sheets", "expression": "expression_contact_sheets"}
METRICS = ("character", "segmentation", "background", "pose", "expression")  # `<stage>_metrics`


def create_pipeline(**kwargs) -> Pipeline:
    inputs = {
        "report": "composition_report",
        **{f"{kind}_loras": f"{kind}.loras" for kind in LORA_TYPES},
        **{f"{kind}_datasets": TRAINED_ON[kind][1] for kind in LORA_TYPES},  # as trained
        **{f"{kind}_sheets": dataset for kind, dataset in SHEETS.items()},
        **{f"{stage}_metrics": f"{stage}_metrics" for stage in METRICS},
    }
    return Pipeline([Node(collect_results, inputs, "results", name="export_results_node")])

"""`kedro run --pipelines=expression`: face crops from preprocessing's character instances and face table
-> an expression per face (requested, confident, unambiguous) -> contact sheets -> one kohya LoRA dataset
per requested expression found -> scores against the demo's true expressions."""

from kedro.pipeline import Node, Pipeline

from ...evaluation.expressions import score_expressions
from .nodes import (
    build_expression_datasets,
    crop_faces,
    expression_contact_sheets,
    label_expressions,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(crop_faces, ["character_instances", "face_table", "params:expression"], "face_crops",
             name="crop_faces_node"),
        Node(label_expressions,
             ["character_instances", "face_crops", "face_table", "instance_index", "character_clusters",
              "params:expression"],
             "expression_table", name="label_expressions_node"),
        Node(expression_contact_sheets, ["face_crops", "expression_table"], "expression_contact_sheets",
             name="expression_contact_sheets_node"),
        Node(build_expression_datasets,
             ["face_crops", "expression_table", "character_embeddings", "character_clusters",
              "params:expression", "params:captioning", "curation"],
             ["expression.lora_dataset", "expression.lora_datasets"], name="build_expression_datasets_node"),
        Node(score_expressions,
             ["expression_table", "character_instances", "face_crops", "face_table", "instance_truth",
              "params:expression", "demo_ground_truth"],
             "expression_metrics", name="score_expressions_node"),
    ])

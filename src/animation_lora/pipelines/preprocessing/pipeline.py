"""`kedro run --pipelines=preprocessing`: film -> measured, deduplicated, sharp frames within a budget ->
layered segmentation -> character clusters -> the character LoRA dataset, with contact sheets and scores
against the demo's ground truth."""

from kedro.pipeline import Node, Pipeline

from ...evaluation.characters import score_characters
from ...evaluation.frames import score_frames
from ...evaluation.segmentation import score_segmentation
from .character_nodes import (
    build_character_dataset,
    cluster_characters,
    cluster_contact_sheets,
    detect_faces,
    embed_characters,
)
from .frame_nodes import (
    deduplicate,
    extract_frames,
    filter_quality,
    frames_contact_sheet,
    ingest,
    keep_within_budget,
    measure_frames,
)
from .layer_nodes import segment_layers


def create_pipeline(**kwargs) -> Pipeline:
    sampling, dedup = "params:preprocessing.sampling", "params:preprocessing.dedup"
    frames = Pipeline([
        Node(ingest, ["film", sampling, "params:shot_cache"], "frame_log", name="ingest_node"),
        Node(measure_frames, ["film", "frame_log", sampling, dedup, "params:shot_cache"], "sampled_index",
             name="measure_frames_node"),
        Node(deduplicate, ["sampled_index", dedup], "unique_index", name="deduplicate_node"),
        Node(filter_quality, ["unique_index", "params:preprocessing.quality"], "sharp_index",
             name="filter_quality_node"),
        Node(keep_within_budget, ["sharp_index", "params:preprocessing.budget"], "frame_index",
             name="frame_budget_node"),
        Node(extract_frames, ["film", "frame_index", "params:shot_cache"], "frames",
             name="extract_frames_node"),
        Node(frames_contact_sheet, ["frames", "frame_index"], "frames_contact_sheet",
             name="frames_contact_sheet_node"),
        Node(score_frames, ["frame_index", "demo_ground_truth"], "preprocessing_metrics",
             name="score_frames_node"),
    ])
    layers = Pipeline([
        Node(segment_layers, ["frames", "frame_index", "params:preprocessing.layers", "params:segmentation",
                              "params:shot_cache", "params:preprocessing.pointed"],
             {"instances": "character_instances", "masks": "instance_masks", "layers": "background_layers",
              "holes": "hole_masks", "instance_index": "instance_index", "layer_index": "layer_index"},
             name="segment_layers_node"),
        Node(score_segmentation, ["instance_masks", "instance_index", "layer_index", "demo_ground_truth"],
             ["segmentation_metrics", "instance_truth"], name="score_segmentation_node"),
    ])
    characters = Pipeline([
        Node(detect_faces, ["character_instances", "params:faces", "params:shot_cache"], "face_table",
             name="detect_faces_node"),
        Node(embed_characters, ["character_instances", "params:embedding"],
             ["character_embeddings", "character_embedding_report"], name="embed_characters_node"),
        Node(cluster_characters,
             ["character_embeddings", "face_table", "instance_index",
              "params:preprocessing.character_clustering", "curation"],
             "character_clusters", name="cluster_characters_node"),
        Node(cluster_contact_sheets, ["character_instances", "character_clusters"],
             "character_cluster_sheets", name="character_cluster_sheets_node"),
        Node(build_character_dataset,
             ["character_instances", "character_clusters", "character_embeddings", "instance_index",
              "face_table", "params:preprocessing.character_dataset", "params:captioning", "curation"],
             ["character.lora_dataset", "character.lora_datasets"], name="build_character_dataset_node"),
        Node(score_characters,
             ["character_clusters", "instance_truth", "character.lora_dataset", "demo_ground_truth"],
             "character_metrics", name="score_characters_node"),
    ])
    return frames + layers + characters

"""`kedro run --pipelines=background` (the brief's steps 2.1-2.5): check layers -> temporal fill +
inpainting -> residue check -> scene clusters -> captions -> the background LoRA datasets (RGBA plates: alpha
0 where inpainted; cropped from large holes; plates still showing a character dropped); purity, scores."""

from kedro.pipeline import Node, Pipeline

from ...evaluation.background import score_background
from .nodes import (
    build_background_datasets,
    check_layers,
    cluster_scenes,
    drop_leaking_plates,
    embed_plates,
    inpaint_plates,
    residue_check,
    scene_contact_sheets,
    score_purity,
    temporal_fill,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(check_layers, ["background_layers", "hole_masks", "layer_index", "params:background.checks"],
             "plates", name="check_layers_node"),
        Node(temporal_fill, ["background_layers", "hole_masks", "plates", "params:background.temporal_fill",
                             "params:shot_cache"],
             ["temporally_filled_frames", "holes_left_frames", "fill_report"], name="temporal_fill_node"),
        Node(inpaint_plates, ["temporally_filled_frames", "holes_left_frames", "params:inpainting",
                              "params:shot_cache"],
             ["inpainted_frames", "inpaint_report"], name="inpaint_node"),
        Node(residue_check,
             ["inpainted_frames", "holes_left_frames", "params:segmentation", "params:background.residue"],
             {"kept": "clean_backgrounds", "rejected": "rejected_plates", "report": "residue_report"},
             name="residue_check_node"),
        Node(embed_plates, ["clean_backgrounds", "params:embedding"],
             ["plate_embeddings", "plate_embedding_report"], name="embed_plates_node"),
        Node(cluster_scenes, ["plate_embeddings", "frame_index", "params:background.scene_clustering",
                              "curation"],
             "scene_clusters", name="cluster_scenes_node"),
        Node(scene_contact_sheets, ["clean_backgrounds", "scene_clusters"], "scene_cluster_sheets",
             name="scene_cluster_sheets_node"),
        Node(build_background_datasets,
             ["clean_backgrounds", "holes_left_frames", "scene_clusters", "plate_embeddings", "frame_index",
              "plates", "residue_report", "params:background.scene_dataset", "params:background.crop",
              "params:captioning", "params:preprocessing.character_clustering.names", "curation"],
             ["background.candidate_dataset", "background.candidate_datasets"],
             name="build_background_dataset_node"),
        Node(drop_leaking_plates,
             ["background.candidate_dataset", "background.candidate_datasets", "params:segmentation",
              "params:background.purity"],
             ["background.lora_dataset", "background.lora_datasets", "background_purity_report"],
             name="drop_leaking_plates_node"),
        Node(score_background,
             ["clean_backgrounds", "hole_masks", "holes_left_frames", "scene_clusters", "params:inpainting",
              "demo_ground_truth"],
             "background_metrics", name="score_background_node"),
        Node(score_purity,
             ["background_purity_report", "character.lora_dataset", "scene_clusters",
              "params:background.purity"],
             "purity_metrics", name="score_purity_node"),
    ])

"""`kedro run --pipeline=preprocessing`: film -> frames (+ frame_index, contact sheet, scores)."""

from kedro.pipeline import Node, Pipeline

from .nodes import deduplicate, filter_quality, frames_contact_sheet, ingest, sample_frames, score_frames


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(ingest, ["film", "params:preprocessing.sampling"], "frame_log", name="ingest_node"),
        Node(sample_frames, ["film", "frame_log", "params:preprocessing.sampling", "params:preprocessing.dedup"],
             ["sampled_frames", "sampled_index"], name="sample_frames_node"),
        Node(deduplicate, ["sampled_frames", "sampled_index", "params:preprocessing.dedup"],
             ["unique_frames", "unique_index"], name="deduplicate_node"),
        Node(filter_quality, ["unique_frames", "unique_index", "params:preprocessing.quality"],
             ["frames", "frame_index"], name="filter_quality_node"),
        Node(frames_contact_sheet, ["frames", "frame_index"], "frames_contact_sheet", name="frames_contact_sheet_node"),
        Node(score_frames, ["frame_index", "demo_ground_truth"], "preprocessing_metrics", name="score_frames_node"),
    ])

"""`kedro run --pipelines=pose` (after preprocessing): keypoints on the character instances -> actions per
track -> OpenPose skeleton images, a contact sheet and a pose LoRA dataset per action, scores."""

from kedro.pipeline import Node, Pipeline

from ...evaluation.pose import score_poses
from .nodes import (
    action_contact_sheets,
    build_pose_datasets,
    draw_skeletons,
    estimate_poses,
    label_actions,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([
        Node(estimate_poses,
             ["character_instances", "instance_index", "frame_index", "params:pose.estimator",
              "params:shot_cache"],
             "pose_keypoints", name="estimate_poses_node"),
        Node(label_actions, ["pose_keypoints", "params:pose"], "action_table", name="label_actions_node"),
        Node(draw_skeletons, ["pose_keypoints", "instance_index", "params:pose"], "pose_skeletons",
             name="draw_skeletons_node"),
        Node(action_contact_sheets, ["character_instances", "action_table"], "action_contact_sheets",
             name="action_contact_sheets_node"),
        Node(build_pose_datasets,
             ["character_instances", "action_table", "instance_index", "character_clusters", "params:pose",
              "params:captioning", "curation"],
             ["pose.lora_dataset", "pose.lora_datasets"], name="build_pose_dataset_node"),
        Node(score_poses, ["pose_keypoints", "action_table", "instance_truth", "params:pose",
                           "demo_ground_truth"], "pose_metrics", name="score_poses_node"),
    ])

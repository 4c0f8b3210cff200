"""Poses and actions from COCO-17 keypoints: what a body shows (`body`: full-body or not, facing, distance),
actions per track (`actions`), the OpenPose skeleton pictures (`openpose`)."""

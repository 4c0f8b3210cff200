"""Character instances -> COCO-17 keypoints -> actions -> skeleton images and pose LoRA datasets."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

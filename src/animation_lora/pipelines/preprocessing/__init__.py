"""Film -> frames -> (segmentation, character clusters: their own issue)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Compose the trained LoRAs: strategies, per-concept scores, weight search, report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Background layers -> clean plates -> scene clusters -> the background LoRA dataset."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

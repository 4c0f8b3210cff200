"""LoRA training: hyper-parameter search, then one LoRA per LoRA type (Kedro namespaces)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

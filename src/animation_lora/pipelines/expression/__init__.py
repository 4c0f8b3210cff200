"""`kedro run --pipelines=expression`: face crops -> expression labels -> one LoRA dataset per expression."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

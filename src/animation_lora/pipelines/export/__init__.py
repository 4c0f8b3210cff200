"""`kedro run --pipelines=export`: the latest LoRAs, datasets, contact sheets and report in one folder."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""Kedro project settings."""

import os

# No network here and no telemetry ever: kedro-telemetry also reads `.telemetry` (consent: false),
# MLflow 3 has its own usage telemetry. The hubs' offline switches: a model name that would download
# (transformers, diffusers, huggingface_hub) fails at once instead of reaching out (issue 25).
for _var in ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY",
             "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_var, "true")
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

from kedro.config import OmegaConfigLoader  # noqa: E402

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # conf/studio and conf/local hold only what differs from conf/base: nested parameter keys are merged
    "merge_strategy": {"parameters": "soft"},
    # `${cwd:}`: the folder kedro runs in (the project root), so the SQLite MLflow URI is absolute
    "custom_resolvers": {"cwd": lambda: Path.cwd().as_posix()},
}

from animation_lora.hooks import (  # noqa: E402
    CheckpointsHook,
    FailedRunVersionsHook,
    MissingInputsHook,
    MlflowTrackingHook,
)

HOOKS = (MissingInputsHook(), CheckpointsHook(), MlflowTrackingHook(),
         FailedRunVersionsHook())

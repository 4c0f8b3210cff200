"""Stand-ins for the studio's models (issue 26): tiny random-weight models of the real architectures, saved
exactly as a user's files would be, so `kedro run --env studio` can be rehearsed end to end on a CPU before
anything is downloaded (docs/studio.md, "Rehearse before you download").

    python -m animation_lora.standins DIR [--seed 0] [--sd15 folder|single_file] [--sdxl folder|single_file]

Each module writes one model into its own folder under DIR with `write(folder, seed)` and returns the
parameters that point `conf/studio` at it (a nested dict, as a `conf/local/parameters.yml` holds):
- `sd15`: an SD-1.5-layout diffusers folder and the same weights as one LDM-layout `.safetensors` + its yaml
- `sdxl`: an SDXL-layout diffusers folder, the same weights as one sgm-layout `.safetensors`, a config folder
- `sam2`: a checkpoint for SAM 2.1's bundled tiny config
- `lama`: a big-lama-shaped TorchScript file and its sha256
- `clip`: an open_clip checkpoint
- `qwen2_vl`: a Qwen2-VL folder with its processor (tokenizer, image processor, chat template)
- `rtmpose`: RTMPose (SimCC) and YOLOX ONNX files as rtmlib loads them
Deterministic from the seed: the same files, byte for byte, every time."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

MODELS = ("sd15", "sdxl", "sam2", "lama", "clip", "qwen2_vl", "rtmpose")
SDXL_RUN = Path("conf") / "studio-sdxl.yml"  # the project's SDXL run configuration (docs/studio.md, "SDXL")
RUN_CONFIG = "rehearsal.yml"  # Kedro's own run configuration file: `kedro run --config DIR/rehearsal.yml`

# What a tiny film on 2 CPU cores can afford; everything else (backends, dtypes, sizes) stays conf/studio's.
# conf/studio's devices (`auto`) and dtypes (fp16) stay: on a machine without a GPU they must still work.
REHEARSAL_SIZES = {
    "preprocessing": {
        "sampling": {"every_n_frames": 2, "min_shot_frames": 2},
        "quality": {"min_width": 64, "min_height": 64},
        "layers": {"min_instance_pixels": 400},
        "character_clustering": {"min_cluster_size": 4, "min_samples": 2},
        "character_dataset": {"target_size": 8},
    },
    "background": {
        "residue": {"min_instance_pixels": 200},
        "purity": {"min_instance_pixels": 200},
        "scene_clustering": {"min_cluster_size": 3, "min_samples": 2},
        "scene_dataset": {"target_size": 6},
    },
    "pose": {"dataset": {"min_images": 2, "target_size": 6}},
    "expression": {"dataset": {"min_images": 2, "target_size": 6}},
    "training": {"search": {"n_trials": 2, "trial_args": {"max_train_epochs": 1}},
                 "args": {"max_train_epochs": 1}, "sampling": {"steps": 2}},
    "composition": {"num_samples": 1, "sampling": {"steps": 2},
                    "weight_search": {"n_trials": 1, "seeds": [0]}},
}

# the SDXL rehearsal's sample images and compositions at 512 px, as the SD 1.5 one's (1024 px on 2 CPU cores:
# ~5 min of samples per LoRA); its datasets keep conf/studio-sdxl.yml's 1024 px buckets
SDXL_PICTURES = {"training": {"sampling": {"size": 512}},
                 "composition": {"sampling": {"width": 512, "height": 512}}}


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = deep_merge(out[key], value) if both else value
    return out


def write_standins(folder: str | Path, seed: int = 0) -> dict:
    """Every stand-in under `folder`/<model>/; the parameters pointing conf/studio at them (the SD 1.5
    folder form; `sd15.single_file_parameters` gives the other)."""
    from tqdm.auto import tqdm

    folder, params = Path(folder), {}
    for name in tqdm(MODELS, desc="studio stand-ins", unit="model"):
        params = deep_merge(params, importlib.import_module(f"{__name__}.{name}").write(folder / name, seed))
    return params


def sdxl_run_parameters(project: Path) -> dict:
    """The parameters of the project's SDXL run configuration (`conf/studio-sdxl.yml`): what `--sdxl`
    rehearses on top of conf/studio."""
    import yaml

    path = project / SDXL_RUN
    if not path.is_file():
        raise FileNotFoundError(f"--sdxl rehearses {SDXL_RUN}, which '{project}' does not have")
    return yaml.safe_load(path.read_text())["run"]["params"]


def write_run_config(folder: str | Path, film: str | Path, params: dict, sizes: dict | None = None) -> Path:
    """`folder/rehearsal.yml`: `kedro run --config` reads it as `--env studio` with these parameters on top
    of conf/studio's (Kedro merges runtime parameters key by key), so nothing in conf/ is touched."""
    import yaml

    runtime = deep_merge(deep_merge(REHEARSAL_SIZES if sizes is None else sizes, params),
                         {"film_path": str(Path(film).resolve())})
    path = Path(folder) / RUN_CONFIG
    path.write_text(yaml.safe_dump({"run": {"env": "studio", "params": runtime}}, sort_keys=False))
    logging.getLogger(__name__).info("Rehearse with: kedro run --config %s", path)
    return path

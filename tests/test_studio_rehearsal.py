"""Issue 26: the studio path rehearsed end to end. `python -m animation_lora.standins` writes tiny random
stand-ins of every studio model in its real on-disk format and a Kedro run configuration; `kedro run
--config rehearsal.yml` then runs `--env studio` (conf/studio as committed, the stand-ins' paths and a tiny
film's sizes on top) through every pipeline, as a user would from the command line."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from tests.conftest import PROJECT_ROOT

# what each studio backend logs when it is built (backends/factory.py), and the embedded ones it replaces
STUDIO = {"diffusion": "sd15", "segmentation": "sam2", "embedding": "clip", "captioning": "qwen2_vl",
          "inpainting": "lama", "pose": "rtmpose"}
EMBEDDED = {"diffusion": {"demo", "tiny"}, "segmentation": {"mediapipe", "grabcut"},
            "embedding": {"mobilenet_v2"}, "captioning": {"template"}, "inpainting": {"opencv", "patchmatch"},
            "pose": {"mediapipe"}}


def studio_project(root: Path) -> Path:
    """A project folder as a studio has it: the committed conf/ (base and studio), nothing in conf/local."""
    root.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    for env in ("base", "studio"):
        shutil.copytree(PROJECT_ROOT / "conf" / env, root / "conf" / env)
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # bootstrap_project wants it; the package itself is installed
    return root


def kedro(project: Path, *args: str) -> str:
    """`kedro …` in `project` as a subprocess (the CLI a user types): its log; an error fails the test."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    done = subprocess.run([str(Path(sys.executable).parent / "kedro"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    return log


def built_backends(log: str) -> set[tuple[str, str]]:
    return set(re.findall(r"(\w+) backend: (\w+)", log))


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, tiny_film):
    root = tmp_path_factory.mktemp("rehearsal")
    project = studio_project(root / "project")
    standins = root / "standins"
    subprocess.run([sys.executable, "-m", "animation_lora.standins", str(standins), "--film", str(tiny_film)],
                   check=True, capture_output=True, timeout=300)
    return project, standins, kedro(project, "run", "--config", str(standins / "rehearsal.yml"))


@pytest.mark.slow
def test_every_studio_backend_runs_and_no_embedded_one(rehearsal):
    _, _, log = rehearsal
    built = built_backends(log)
    assert {(c, b) for c, b in built if c in STUDIO} >= set(STUDIO.items())
    assert not {(c, b) for c, b in built if b in EMBEDDED.get(c, ())}, built


@pytest.mark.slow
def test_the_loras_are_kohya_files_for_the_sd15_standin(rehearsal):
    project, standins, _ = rehearsal
    from animation_lora.standins.sd15 import modules

    unet, _, _ = modules(0)
    targets = {name.replace(".", "_") for name, _ in unet.named_modules()}
    loras = sorted((project / "data" / "06_models").rglob("*.safetensors"))
    loras = [p for p in loras if "cache" not in p.parts]
    assert loras
    for path in loras:
        with safe_open(str(path), framework="pt") as f:
            keys, meta = list(f.keys()), f.metadata()
        modules_named = {k.split(".")[0][len("lora_unet_"):] for k in keys if k.startswith("lora_unet_")}
        assert modules_named and modules_named <= targets, (path, sorted(modules_named - targets)[:3])
        assert meta["ss_network_module"] == "networks.lora" and meta["ss_base_model_version"] == "sd_v1"


@pytest.mark.slow
def test_the_export_folder_is_complete(rehearsal):
    project, _, _ = rehearsal
    export = project / "data" / "09_export"
    manifest = next(export.rglob("manifest.json"))
    listed = json.loads(manifest.read_text())
    assert listed and all((manifest.parent / f).is_file() for f in listed.get("files", []))

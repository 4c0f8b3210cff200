"""A versioned kohya-style LoRA dataset folder: `images/<id>.png` + `images/<id>.txt` captions, the
`dataset.toml` that `train_network.py --dataset_config` takes as is, `lora.json` (the LoRA's name and trigger,
so a load gives back what was saved) and `report.csv` (what was selected and why).

`KohyaDatasetsFolder` holds one such folder per LoRA (`<name>/`): one dataset per selected character or
scene. `write_kohya(..., relative=True)` writes `image_dir = "images"` for a folder that is moved (export)."""

from __future__ import annotations

import json
import tomllib
from functools import partial
from pathlib import Path

import pandas as pd
import tomli_w
from kedro.io import DatasetError
from kedro_datasets._typing import ImagePreview

from ..ids import inside, safe_name
from ..lora_dataset import TrainingSet
from .image_folder import ImageFolderDataset, as_pil, read_png
from .versioned import VersionedLocalDataset

SIDECAR = "lora.json"


def write_kohya(data: TrainingSet, staging: Path, final: Path, relative: bool = False) -> None:
    """Write a kohya dataset into `staging`, its `image_dir` pointing at `final/images` (or `images`, relative
    to the folder: sd-scripts then runs from inside it)."""
    images = staging / "images"
    images.mkdir(parents=True)
    for key, image in data.images.items():
        picture = as_pil(image)  # RGBA keeps its alpha: the loss mask (kohya's `alpha_mask`)
        (picture if picture.mode == "RGBA" else picture.convert("RGB")).save(images / f"{key}.png")
        (images / f"{key}.txt").write_text(data.captions[key] + "\n", encoding="utf-8")
    toml = {**data.toml, "datasets": [dict(d) for d in data.toml["datasets"]]}
    image_dir = "images" if relative else str((final / "images").resolve())
    for d in toml["datasets"]:  # image_dir: where the images will be once the folder is in place
        d["subsets"] = [{"image_dir": image_dir, **{k: v for k, v in s.items() if k != "image_dir"}}
                        for s in d["subsets"]]
    where = "from inside this folder" if relative else ""
    (staging / "dataset.toml").write_text(
        f"# kohya sd-scripts: train_network.py --dataset_config dataset.toml {where}\n".replace(" \n", "\n")
        + tomli_w.dumps(toml)
    )
    identity = {"name": data.name, "trigger": data.trigger}
    if data.skipped:  # nothing to teach: why (`lora_dataset.nothing_to_teach`)
        identity["skipped"] = data.skipped
    (staging / SIDECAR).write_text(json.dumps(identity, indent=2))
    data.report.to_csv(staging / "report.csv", index=False)


def read_kohya(folder: Path) -> TrainingSet:
    if not (folder / "dataset.toml").exists():
        raise DatasetError(f"No kohya dataset at '{folder}'")
    toml = tomllib.loads((folder / "dataset.toml").read_text())
    if not (folder / SIDECAR).exists():
        raise DatasetError(
            f"Kohya dataset '{folder}' has no {SIDECAR} (the LoRA's name and trigger): it was "
            f"written by an older version; rerun the pipeline that builds it"
        )
    identity = json.loads((folder / SIDECAR).read_text())
    safe_name(identity.get("name"), f"The LoRA name in '{folder / SIDECAR}'")
    pngs = sorted((folder / "images").glob("*.png"))
    return TrainingSet(
        name=identity["name"],
        trigger=identity["trigger"],
        images={p.stem: partial(read_png, p) for p in pngs},
        captions={p.stem: p.with_suffix(".txt").read_text(encoding="utf-8").strip() for p in pngs},
        toml=toml,
        report=pd.read_csv(folder / "report.csv"),
        skipped=identity.get("skipped", ""),
    )


class KohyaDatasetFolder(VersionedLocalDataset):
    def save(self, data: TrainingSet) -> None:
        with self._new_version(folder=True) as partial_dir:
            write_kohya(data, partial_dir, Path(self._get_save_path()))

    def load(self) -> TrainingSet:
        return read_kohya(Path(self._get_load_path()))

    def _present(self, path: Path) -> bool:
        return (path / "dataset.toml").exists()

    def preview(self, count: int = 12) -> ImagePreview:
        return ImageFolderDataset.preview_images({k: v for k, v in list(self.load().images.items())[:count]})


class KohyaDatasetsFolder(VersionedLocalDataset):
    """`{name: TrainingSet}`: one kohya dataset folder per LoRA, `<version>/<name>/`."""

    def save(self, data: dict[str, TrainingSet]) -> None:
        folder = Path(self._get_save_path())
        with self._new_version(folder=True) as partial_dir:
            for name, training_set in data.items():
                safe_name(name, f"A LoRA dataset name in '{folder}'")
                write_kohya(training_set, inside(partial_dir, partial_dir / name, "A LoRA dataset"),
                            folder / name)

    def load(self) -> dict[str, TrainingSet]:
        folder = Path(self._get_load_path())
        return {p.name: read_kohya(p) for p in sorted(folder.iterdir()) if (p / "dataset.toml").exists()}

    def _present(self, path: Path) -> bool:
        return path.is_dir()

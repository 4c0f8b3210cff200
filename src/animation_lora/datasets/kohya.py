"""A versioned kohya-style LoRA dataset folder: `images/<id>.png` + `images/<id>.txt` captions, the
`dataset.toml` that `train_network.py --dataset_config` takes as is, `lora.json` (the LoRA's name and trigger,
so a load gives back what was saved) and `report.csv` (what was selected and why)."""

from __future__ import annotations

import json
import tomllib
from functools import partial
from pathlib import Path

import pandas as pd
import tomli_w
from kedro.io import DatasetError
from kedro_datasets._typing import ImagePreview

from ..training_set import TrainingSet
from .image_folder import ImageFolderDataset, _as_pil, _read_png
from .versioned import VersionedLocalDataset

SIDECAR = "lora.json"


class KohyaDatasetFolder(VersionedLocalDataset):
    def save(self, data: TrainingSet) -> None:
        folder = Path(self._get_save_path())
        partial_dir = folder.with_name(folder.name + ".partial")
        images = partial_dir / "images"
        images.mkdir(parents=True)
        for key, image in data.images.items():
            _as_pil(image).convert("RGB").save(images / f"{key}.png")
            (images / f"{key}.txt").write_text(data.captions[key] + "\n", encoding="utf-8")
        toml = {**data.toml, "datasets": [dict(d) for d in data.toml["datasets"]]}
        for d in toml["datasets"]:  # image_dir: where the images will be once the folder is in place
            d["subsets"] = [{"image_dir": str((folder / "images").resolve()), **s} for s in d["subsets"]]
        (partial_dir / "dataset.toml").write_text(
            "# kohya sd-scripts: train_network.py --dataset_config dataset.toml\n" + tomli_w.dumps(toml)
        )
        (partial_dir / SIDECAR).write_text(json.dumps({"name": data.name, "trigger": data.trigger}, indent=2))
        data.report.to_csv(partial_dir / "report.csv", index=False)
        partial_dir.rename(folder)

    def load(self) -> TrainingSet:
        folder = Path(self._get_load_path())
        if not (folder / "dataset.toml").exists():
            raise DatasetError(f"No kohya dataset at '{folder}'")
        toml = tomllib.loads((folder / "dataset.toml").read_text())
        if not (folder / SIDECAR).exists():
            raise DatasetError(
                f"Kohya dataset '{folder}' has no {SIDECAR} (the LoRA's name and trigger): it was "
                f"written by an older version; rerun the pipeline that builds it"
            )
        identity = json.loads((folder / SIDECAR).read_text())
        pngs = sorted((folder / "images").glob("*.png"))
        return TrainingSet(
            name=identity["name"],
            trigger=identity["trigger"],
            images={p.stem: partial(_read_png, p) for p in pngs},
            captions={p.stem: p.with_suffix(".txt").read_text(encoding="utf-8").strip() for p in pngs},
            toml=toml,
            report=pd.read_csv(folder / "report.csv"),
        )

    def _present(self, path: Path) -> bool:
        return (path / "dataset.toml").exists()

    def preview(self, count: int = 12) -> ImagePreview:
        return ImageFolderDataset.preview_images({k: v for k, v in list(self.load().images.items())[:count]})

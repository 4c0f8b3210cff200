"""LoRA `.safetensors` files (kohya keys + ss_* / modelspec.* metadata): one versioned file, a versioned
folder of them (a training's per-epoch saves), and a read-only input folder (LoRAs made elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..ids import safe_name
from ..lora_format import LoraFile
from .versioned import VersionedLocalDataset


def read_lora(path: str | Path) -> LoraFile:
    """Any LoRA .safetensors (ours, kohya's, A1111's): tensors and metadata, nothing else executed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file not found: '{path}'")
    try:
        with safe_open(str(path), framework="pt") as f:
            return LoraFile({k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {})
    except (SafetensorError, OSError) as err:  # not safetensors, truncated, garbage
        raise ValueError(f"'{path}' is not a readable LoRA .safetensors file: {err}") from err


class LoraFileDataset(VersionedLocalDataset):
    def save(self, data: LoraFile) -> None:
        with self._new_version() as path:
            save_file(data.tensors, str(path), metadata=data.metadata)

    def load(self) -> LoraFile:
        return read_lora(self._get_load_path())

    def _present(self, path: Path) -> bool:
        return path.is_file()


class LoraFolderDataset(VersionedLocalDataset):
    """A versioned folder of LoRA files `{name: LoraFile}` (the per-epoch saves of one training)."""

    def save(self, data: dict[str, LoraFile]) -> None:
        with self._new_version(folder=True) as partial_dir:
            for name, lora in data.items():
                safe_name(name, f"A LoRA name in '{self._get_save_path()}'")
                save_file(lora.tensors, str(partial_dir / f"{name}.safetensors"), metadata=lora.metadata)

    def load(self) -> dict[str, LoraFile]:
        return {p.stem: read_lora(p) for p in sorted(Path(self._get_load_path()).glob("*.safetensors"))}

    def _present(self, path: Path) -> bool:
        return path.is_dir()


class LoraInputFolderDataset(AbstractDataset[None, "dict[str, LoraFile]"]):
    """Read-only: a folder of LoRAs made elsewhere, `{name: LoraFile}` from `<name>.safetensors`. A missing or
    empty folder is `{}`; any other file in it (a `.ckpt`, garbage named `.safetensors`) is an error naming
    it, since a LoRA that is silently left out would be missed. Hidden files are ignored."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._path = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, LoraFile]:
        if not self._path.is_dir():
            return {}
        files = sorted(p for p in self._path.iterdir() if not p.name.startswith("."))
        other = [p.name for p in files if p.suffix != ".safetensors"]
        if other:
            raise DatasetError(f"'{self._path}' holds {other}: only LoRA .safetensors files are read from it")
        try:
            return {p.stem: read_lora(p) for p in files}
        except ValueError as err:
            raise DatasetError(str(err)) from err

    def save(self, data: None) -> None:
        raise DatasetError("LoraInputFolderDataset is read-only: LoRAs made elsewhere are never written over")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}

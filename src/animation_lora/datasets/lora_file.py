"""A versioned LoRA `.safetensors` file (kohya keys + ss_* / modelspec.* metadata)."""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from ..lora_format import LoraFile
from .versioned import VersionedLocalDataset


def read_lora(path: str | Path) -> LoraFile:
    """Any LoRA .safetensors (ours, kohya's, A1111's): tensors and metadata, nothing else executed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file not found: '{path}'")
    with safe_open(str(path), framework="pt") as f:
        return LoraFile({k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {})


class LoraFileDataset(VersionedLocalDataset):
    def save(self, data: LoraFile) -> None:
        path = Path(self._get_save_path())
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(data.tensors, str(path) + ".partial", metadata=data.metadata)
        Path(str(path) + ".partial").rename(path)

    def load(self) -> LoraFile:
        return read_lora(self._get_load_path())

    def _present(self, path: Path) -> bool:
        return path.is_file()

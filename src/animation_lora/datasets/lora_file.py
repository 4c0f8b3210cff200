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


class LoraFolderDataset(VersionedLocalDataset):
    """A versioned folder of LoRA files `{name: LoraFile}` (the per-epoch saves of one training)."""

    def save(self, data: dict[str, LoraFile]) -> None:
        folder = Path(self._get_save_path())
        partial_dir = folder.with_name(folder.name + ".partial")
        partial_dir.mkdir(parents=True)
        for name, lora in data.items():
            save_file(lora.tensors, str(partial_dir / f"{name}.safetensors"), metadata=lora.metadata)
        partial_dir.rename(folder)

    def load(self) -> dict[str, LoraFile]:
        return {p.stem: read_lora(p) for p in sorted(Path(self._get_load_path()).glob("*.safetensors"))}

    def _present(self, path: Path) -> bool:
        return path.is_dir()

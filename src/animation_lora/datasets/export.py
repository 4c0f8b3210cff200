"""The results of a run in one folder per film, with plain names, readable by everyone:

    <filepath>/<film name>/loras/<name>.safetensors       the latest LoRA of every character and scene
                           loras/<name>.json              which base it is for (A1111's sidecar: "sd version")
                           datasets/<name>/               kohya folders, `image_dir = "images"` (relative)
                           contact_sheets/<kind>_<cluster>.png
                           report.html, <stage>_metrics.json

Versions stay in the catalog; this folder is replaced as a whole by each export."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from safetensors.torch import save_file

from ..backends.diffusion import SDXL
from ..ids import safe_name
from ..lora_format import LoraFile, architecture_of
from .film import film_name, film_path_given
from .image_folder import as_pil
from .kohya import write_kohya

log = logging.getLogger(__name__)
FILM_RECORD = "film.json"  # which film a results folder holds: a film of the same name never replaces it


def _follow_umask(root: Path) -> None:
    """Every folder and file as the user's umask says (safetensors writes its files 0600): never opened to
    everyone, never closed to the user's group when the umask shares with it."""
    umask = os.umask(0)
    os.umask(umask)
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~umask)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o666 & ~umask)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the system or file
    system cannot."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_folder(staging: Path, final: Path) -> None:
    """`final` becomes `staging`'s content. Readers see the old folder or the new, never none or half: an
    atomic exchange where the system has one; elsewhere two renames, the old folder kept as `<final>.old`
    until the new one is in place (`restore_interrupted_swap` puts it back after a kill in between)."""
    if not final.exists():
        staging.rename(final)
    elif _exchange(staging, final):
        shutil.rmtree(staging)  # now the old folder
    else:
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old)


def restore_interrupted_swap(final: Path) -> None:
    """A kill between the two renames of `replace_folder` left `<final>.old` and no `final`: put it back."""
    old = final.with_name(final.name + ".old")
    if old.exists() and not final.exists():
        old.rename(final)
        log.warning("'%s' was being replaced when a run stopped: the previous results are back", final)


def sidecar(lora: LoraFile) -> dict[str, str]:
    """A1111's user-metadata file for a LoRA (`<name>.json` beside it): its "sd version" hides the LoRA
    under a base of the other architecture; the trigger words and the base it was trained on."""
    meta = lora.metadata
    sdxl = architecture_of(lora) == SDXL
    base = f"{meta.get('ss_sd_model_name', '?')} (ss_sd_model_hash {meta.get('ss_sd_model_hash', '?')})"
    return {
        "description": f"{'SDXL' if sdxl else 'SD 1.5'} LoRA trained on {base}",
        "sd version": "SDXL" if sdxl else "SD1",
        "activation text": lora.trigger,
        "preferred weight": 0,
        "notes": f"not trained: {lora.skipped}" if lora.skipped else
                 f"kohya format ({meta.get('ss_base_model_version', 'sd_v1')}); for {base}",
    }


class ExportFolder(AbstractDataset[dict, None]):
    """Write-only. `save({"loras": {name: LoraFile}, "datasets": {name: TrainingSet},
    "sheets": {file stem: image}, "report": html or None, "metrics": {stage: dict}})`."""

    def __init__(self, filepath: str, film_path: str, metadata: dict[str, Any] | None = None):
        self._root = Path(filepath)
        self._film = film_path_given(film_path)
        self.metadata = metadata

    @property
    def folder(self) -> Path:
        return self._root / film_name(self._film)

    def save(self, data: dict[str, Any]) -> None:
        final = self.folder
        restore_interrupted_swap(final)
        film = str(self._film.resolve())
        record = final / FILM_RECORD
        other = json.loads(record.read_text()).get("film") if record.exists() else film
        if other != film:
            raise DatasetError(
                f"Results folder '{final}' holds the results of '{other}'; '{film}' has the same name: "
                f"rename one film or move that folder (nothing was overwritten)"
            )
        staging = final.with_name(final.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "loras").mkdir(parents=True)
        for name in [*data.get("loras", {}), *data.get("datasets", {}), *data.get("sheets", {})]:
            safe_name(name, f"A result's name in '{final}'")
        for name, lora in data.get("loras", {}).items():
            save_file(lora.tensors, str(staging / "loras" / f"{name}.safetensors"), metadata=lora.metadata)
            (staging / "loras" / f"{name}.json").write_text(json.dumps(sidecar(lora), indent=2))
        for name, training_set in data.get("datasets", {}).items():
            write_kohya(training_set, staging / "datasets" / name, final / "datasets" / name, relative=True)
        if data.get("sheets"):
            (staging / "contact_sheets").mkdir()
            for stem, image in data["sheets"].items():
                as_pil(image).save(staging / "contact_sheets" / f"{stem}.png")
        (staging / FILM_RECORD).write_text(json.dumps({"film": film}))
        if data.get("report"):
            (staging / "report.html").write_text(data["report"], encoding="utf-8")
        for stage, metrics in (data.get("metrics") or {}).items():
            (staging / f"{stage}_metrics.json").write_text(json.dumps(metrics, indent=2))
        _follow_umask(staging)
        replace_folder(staging, final)
        names = ", ".join(f"{n}.safetensors" for n in data.get("loras", {}))
        log.info("Results for '%s' are in %s: loras/ (%s), datasets/, contact_sheets/, report.html",
                 self._film.name, final.resolve(), names)

    def load(self) -> None:
        raise DatasetError("The export folder is written for people, not read back by the pipeline")

    def _exists(self) -> bool:
        return self.folder.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._root), "film_path": str(self._film)}

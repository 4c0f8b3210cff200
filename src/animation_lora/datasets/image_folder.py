"""A versioned folder of PNG images: `{id: image}` in, `{id: loader}` out (lazy, like PartitionedDataset)."""

import base64
import io
import os
import re
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import DatasetError
from kedro_datasets._typing import ImagePreview
from PIL import Image
from tqdm.auto import tqdm

from ..imaging import contact_sheet
from .versioned import VersionedLocalDataset

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def png_file(image: Any) -> Path | None:
    """The PNG file behind a loader of an image folder (or of the shot cache), else None."""
    if isinstance(image, partial) and image.func is read_png:
        return Path(image.args[0])
    return None


def link_or_copy(source: Path, target: Path) -> None:
    """`target` the same bytes as `source`: a hard link (no second copy on disk; neither file is ever
    written again), else a copy (another file system)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def as_pil(image: Any) -> Image.Image:
    if callable(image) and not isinstance(image, (np.ndarray, Image.Image)):
        image = image()  # a lazy loader from another image folder
    if isinstance(image, Image.Image):
        return image
    a = np.asarray(image)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255  # masks are stored as 0/255 greyscale
    if a.dtype != np.uint8:
        raise DatasetError(f"Images must be uint8 (or bool masks); got {a.dtype}")
    return Image.fromarray(a)


class ImageFolderDataset(VersionedLocalDataset):
    """Saves `{id: image}` (PIL image, uint8 RGB/RGBA/grey array, bool mask or a loader; a mapping that
    decodes as it is iterated is saved one image at a time) as `<id>.png` files in a new version folder;
    loads `{id: callable}` that reads one image as a numpy array.

    An existing version is never written over; a save that dies half-way leaves a `.partial` folder
    that no load picks up. ``preview()`` gives kedro-viz a contact sheet of the first images.
    """

    def load(self) -> dict[str, Callable[[], np.ndarray]]:
        folder = Path(self._get_load_path())
        if not folder.is_dir():
            raise DatasetError(f"No image folder at '{folder}'")
        return {p.stem: partial(read_png, p) for p in sorted(folder.glob("*.png"))}

    def save(self, data: dict[str, Any]) -> None:
        folder = Path(self._get_save_path())
        bad = [k for k in data if not _SAFE_ID.match(str(k))]
        if bad:
            raise DatasetError(f"Image ids must be file-name safe; offending ids: {bad[:5]}")
        with self._new_version(folder=True) as partial_dir:
            for key, image in tqdm(data.items(), desc=f"save {folder.name}", unit="img", leave=False):
                if png_file(image):  # already a PNG on disk: the same file, never decoded again
                    link_or_copy(png_file(image), partial_dir / f"{key}.png")
                else:
                    as_pil(image).save(partial_dir / f"{key}.png", compress_level=4)

    def _present(self, path: Path) -> bool:
        return path.is_dir()

    def preview(self, count: int = 16, thumb: int = 128) -> ImagePreview:
        return self.preview_images(dict(list(self.load().items())[:count]), thumb)

    @staticmethod
    def preview_images(loaders: dict[str, Callable[[], np.ndarray]], thumb: int = 128) -> ImagePreview:
        """A base64 PNG contact sheet, the payload kedro-viz shows for an ImagePreview."""
        sheet = contact_sheet([load() for load in loaders.values()], list(loaders), thumb=thumb, cols=4)
        buffer = io.BytesIO()
        Image.fromarray(sheet).save(buffer, format="PNG")
        return ImagePreview(base64.b64encode(buffer.getvalue()).decode("ascii"))

import base64
import io
import time

import numpy as np
import pytest
from kedro.io import DatasetError, Version
from PIL import Image

from animation_lora.datasets import ImageFolderDataset


def images(value: int):
    rgb = np.full((20, 30, 3), value, np.uint8)
    rgba = np.dstack([rgb, np.full((20, 30), 128, np.uint8)])
    return {"rgb": rgb, "rgba": rgba, "mask": rgb[..., 0] > 100, "pil": Image.fromarray(rgb)}


def test_save_twice_gives_two_versions_and_old_one_replays(tmp_path):
    path = str(tmp_path / "frames")
    ImageFolderDataset(path, version=Version(None, None)).save(images(10))
    time.sleep(0.01)
    ImageFolderDataset(path, version=Version(None, None)).save(images(200))
    ds = ImageFolderDataset(path, version=Version(None, None))
    versions = ds.list_versions(full_path=False)
    assert len(versions) == 2
    latest = ds.load()
    assert sorted(latest) == ["mask", "pil", "rgb", "rgba"]
    assert latest["rgb"]().shape == (20, 30, 3) and latest["rgb"]()[0, 0, 0] == 200
    assert latest["rgba"]().shape == (20, 30, 4)
    assert set(np.unique(latest["mask"]())) == {255}
    old = ImageFolderDataset(path, version=Version(versions[-1], None)).load()  # what --load-versions does
    assert old["rgb"]()[0, 0, 0] == 10 and set(np.unique(old["mask"]())) == {0}


def test_existing_version_is_never_overwritten(tmp_path):
    ds = ImageFolderDataset(str(tmp_path / "frames"), version=Version(None, "2026-01-01T00.00.00.000Z"))
    ds.save(images(10))
    with pytest.raises(DatasetError, match="must not exist"):
        ds.save(images(20))
    assert ds.load()["rgb"]()[0, 0, 0] == 10


def test_unsafe_ids_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="file-name safe"):
        ImageFolderDataset(str(tmp_path / "f"), version=Version(None, None)).save(
            {"../escape": images(1)["rgb"]}
        )


def test_preview_is_a_png_contact_sheet(tmp_path):
    ds = ImageFolderDataset(str(tmp_path / "frames"), version=Version(None, None))
    ds.save(images(90))
    preview = ds.preview(count=3)
    sheet = Image.open(io.BytesIO(base64.b64decode(preview)))
    assert sheet.format == "PNG" and sheet.width == 3 * 128  # three thumbnails in a row
    assert (
        type(ds).preview.__annotations__["return"].__name__ == "ImagePreview"
    )  # what kedro-viz dispatches on

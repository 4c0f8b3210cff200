"""Small image helpers shared by nodes, datasets and reports."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageOps


def to_rgb_array(image) -> np.ndarray:
    """Any PIL image or array (grey, RGBA over white, 16-bit, float in [0, 1]) as uint8 RGB."""
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            image = np.asarray(image)
        elif (
            image.mode == "RGBA"
            or (image.mode in ("LA", "P") and "transparency" in image.info)
            or image.mode == "LA"
        ):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        else:
            return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.dtype == np.uint16 or a.dtype == np.int32:
        a = (a.astype(np.float64) / max(float(a.max()), 1.0) * 255) if a.dtype == np.int32 else a / 257.0
    elif a.dtype.kind == "f":
        a = a * 255.0 if a.max() <= 1.0 else a
    a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255
        a = (a[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return a


def contact_sheet(
    images: list, captions: list[str] | None = None, thumb: int = 160, cols: int = 8, title: str | None = None
) -> np.ndarray:
    """A grid of thumbnails `thumb` wide (height from the images' median aspect, letterboxed), with an
    optional caption under each."""
    images = [to_rgb_array(im) for im in images]
    captions = captions or [""] * len(images)
    tile_h = int(thumb * np.median([im.shape[0] / im.shape[1] for im in images])) if images else thumb
    cols = max(1, min(cols, len(images) or 1))
    rows = max(1, -(-len(images) // cols))
    cap_h = 14 if any(captions) else 0
    top = 18 if title else 0
    sheet = Image.new("RGB", (cols * thumb, top + rows * (tile_h + cap_h)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 3), title, fill=(255, 255, 255))
    for i, (img, cap) in enumerate(zip(images, captions)):
        tile = ImageOps.contain(
            Image.fromarray(img),
            (thumb, tile_h),  # small images are enlarged too
            Image.NEAREST if max(img.shape[:2]) < thumb // 2 else Image.BICUBIC,
        )
        x, y = (i % cols) * thumb, top + (i // cols) * (tile_h + cap_h)
        sheet.paste(tile, (x + (thumb - tile.width) // 2, y + (tile_h - tile.height) // 2))
        if cap:
            draw.text((x + 3, y + tile_h + 1), cap[: thumb // 6], fill=(230, 230, 230))
    return np.asarray(sheet)

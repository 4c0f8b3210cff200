"""The `regional` strategy's layout: which LoRAs act where, the character's region as a soft mask, and the
prompt split per region (the approach of Mix-of-Show's regional sampling and A1111's Regional Prompter: the
character's LoRAs and words inside its region, the place's outside, the shared words in both)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, UnidentifiedImageError

from .parameters import Regional
from .prompts import tidy_prompt


@dataclass
class Regions:
    inside: list[str]  # the LoRAs that act in the character's region (the others act outside it)
    mask: np.ndarray  # (height, width) float in [0, 1]: 1 where the character stands
    triggers: dict[str, str]  # LoRA name -> its trigger phrase (what the prompt split moves)

    def prompts(self, prompt: str, names: list[str]) -> tuple[str, str]:
        """(inside, outside): each region's prompt without the other region's LoRAs' trigger phrases."""
        inside = [n for n in names if n in self.inside]
        outside = [n for n in names if n not in self.inside]
        return (without_phrases(prompt, [self.triggers[n] for n in outside]),
                without_phrases(prompt, [self.triggers[n] for n in inside]))


def without_phrases(prompt: str, phrases: list[str]) -> str:
    """The prompt without these phrases (whole words, case-insensitive), commas tidied."""
    for phrase in sorted(phrases, key=len, reverse=True):  # "beach house" before "beach"
        if phrase.strip():
            prompt = re.sub(rf"(?<!\w){re.escape(phrase.strip())}(?!\w)", "", prompt, flags=re.IGNORECASE)
    return tidy_prompt(prompt)


def box_mask(box: list[float], height: int, width: int) -> np.ndarray:
    """1 inside the box (left, top, right, bottom as fractions of the picture), 0 outside."""
    left, top, right, bottom = box
    mask = np.zeros((height, width), np.float32)
    mask[round(top * height) : round(bottom * height), round(left * width) : round(right * width)] = 1
    return mask


def read_layout_picture(path: str, key: str) -> np.ndarray:
    """A layout picture as a boolean array (any channel brighter than 127: drawn); errors name `key`."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"`{key}` is '{path}': no such file")
    try:
        with Image.open(file) as image:
            grey = np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"`{key}` is '{path}': not a readable picture ({err})") from None
    drawn = grey > 127
    if not drawn.any():
        raise ValueError(f"`{key}` is '{path}': the picture is black, it shows no region")
    return drawn


def skeleton_box(drawn: np.ndarray, pad: float) -> list[float]:
    """The box around an OpenPose skeleton's drawn pixels, padded by `pad` of the picture on every side."""
    rows, cols = np.nonzero(drawn)
    h, w = drawn.shape
    return [max(0.0, cols.min() / w - pad), max(0.0, rows.min() / h - pad),
            min(1.0, (cols.max() + 1) / w + pad), min(1.0, (rows.max() + 1) / h + pad)]


def region_mask(layout: Regional, height: int, width: int) -> np.ndarray:
    """The character's region at the picture's size: a mask picture, else the box around a skeleton picture,
    else the layout's box; its edge feathered over `feather` of the picture (no seam between regions)."""
    if layout.mask:
        drawn = read_layout_picture(layout.mask, "composition.regional.mask")
        mask = np.asarray(Image.fromarray(drawn.astype(np.uint8) * 255).resize((width, height))) / 255.0
    elif layout.skeleton:
        drawn = read_layout_picture(layout.skeleton, "composition.regional.skeleton")
        mask = box_mask(skeleton_box(drawn, layout.pad), height, width)
    else:
        mask = box_mask(layout.box, height, width)
    if layout.feather > 0:
        soft = Image.fromarray(np.uint8(mask * 255)).filter(
            ImageFilter.GaussianBlur(layout.feather * max(height, width) / 2))
        mask = np.asarray(soft) / 255.0
    return np.asarray(mask, np.float32)


def make_regions(layout: Regional, names: list[str], triggers: dict[str, str], height: int,
                 width: int, absent: list[str] = ()) -> Regions:
    """The regions of one composition run; an `inside` name that is neither loaded nor `absent` (a type
    with nothing to teach) is an error naming it."""
    unknown = sorted(set(layout.inside) - set(names) - set(absent))
    if unknown:
        raise ValueError(f"`composition.regional.inside` names LoRA(s) {unknown} that are not loaded; "
                         f"loaded: {sorted(names)}")
    return Regions(list(layout.inside), region_mask(layout, height, width), dict(triggers))

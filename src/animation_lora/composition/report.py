"""The composition report: one HTML page (images embedded, opens from disk) rendered from
`templates/report.html.j2` with autoescaping, so a prompt or a file name is shown, never interpreted."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader
from PIL import Image

from ..imaging import contact_sheet
from ..loop import materialise
from .lora_set import LoraSet

STRATEGY_COLUMNS = ("composition_score", "character_present", "background_present", "seconds_per_image")
_ENV = Environment(loader=PackageLoader("animation_lora.composition", "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True)


def data_uri(image) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(materialise(image))).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_report(images: dict[str, Any], scores: pd.DataFrame, metrics: dict[str, Any],
                  tuned: dict[str, Any], lora_set: LoraSet) -> str:
    """LoRAs and weights, per-strategy scores and timings, every image with its prompt, strategy, weights and
    per-concept scores, the weight search."""
    cards = [{**row, "uri": data_uri(images[row["image_id"]]),
              "composition_score": None if pd.isna(row["composition_score"]) else row["composition_score"]}
             for row in scores.to_dict("records")]
    return _ENV.get_template("report.html.j2").render(
        lora_set=lora_set, per_strategy=metrics["per_strategy"], columns=STRATEGY_COLUMNS, cards=cards,
        tuned=tuned, default_weights=json.dumps(tuned["default_weights"]),
        best_weights=json.dumps(tuned["best_weights"]))


def composition_grid(images: dict[str, Any], table: pd.DataFrame) -> Image.Image:
    """Rows: prompt x strategy; columns: samples; each image labelled."""
    table = table.sort_values(["prompt_index", "strategy", "sample"])
    cols = int(table["sample"].max()) + 1 if len(table) else 1
    thumbs = [materialise(images[i]) for i in table.image_id]
    captions = [f"p{r.prompt_index} {r.strategy} #{r.sample}" for r in table.itertuples()]
    sheet = contact_sheet(thumbs, captions, thumb=160, cols=cols, title="prompt x strategy (rows), samples")
    return Image.fromarray(sheet)

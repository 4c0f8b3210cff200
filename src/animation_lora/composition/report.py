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

from ..image_loop import materialise
from ..imaging import contact_sheet
from ..lora_format import LORA_TYPES
from .lora_set import LoraSet

# per-strategy columns in this order, those the metrics have: share, all present, per-slot recall, cost
STRATEGY_COLUMNS = ("composition_score", "all_present", *(f"{t}_present" for t in LORA_TYPES),
                    "seconds_per_image", "clip_t")
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
              "composition_score": None if pd.isna(row["composition_score"]) else row["composition_score"],
              "present": {c[: -len("_present")]: _said(row[c]) for c in row
                          if c.endswith("_present") and c != "all_present"},
              "probe": {c[len("probe_"):]: f"{row[c]} {row[c + '_p']:.2f}" for c in row
                        if c.startswith("probe_") and not c.endswith("_p")}}
             for row in scores.to_dict("records")]
    per_strategy = metrics["per_strategy"]
    columns = [c for c in STRATEGY_COLUMNS if any(c in v for v in per_strategy.values())]
    return _ENV.get_template("report.html.j2").render(
        lora_set=lora_set, per_strategy=per_strategy, columns=columns, cards=cards, metrics=metrics,
        tuned=tuned, default_weights=json.dumps(tuned["default_weights"]),
        best_weights=json.dumps(tuned["best_weights"]))


def _said(value) -> str:
    """A presence as the report shows it: yes, no, or – where the prompt did not ask for the slot."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return "yes" if value else "no"


def composition_grid(images: dict[str, Any], table: pd.DataFrame) -> Image.Image:
    """Rows: prompt x strategy; columns: samples; each image labelled."""
    table = table.sort_values(["prompt_index", "strategy", "sample"])
    cols = int(table["sample"].max()) + 1 if len(table) else 1
    thumbs = [materialise(images[i]) for i in table.image_id]
    captions = [f"p{r.prompt_index} {r.strategy} #{r.sample}" for r in table.itertuples()]
    sheet = contact_sheet(thumbs, captions, thumb=160, cols=cols, title="prompt x strategy (rows), samples")
    return Image.fromarray(sheet)

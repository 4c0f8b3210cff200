"""The composition report renders from its template, with every value escaped."""

import json

import numpy as np
import pandas as pd

from animation_lora.composition.lora_set import LoraSet
from animation_lora.composition.report import render_report
from animation_lora.lora_format import LoraFile


def test_the_report_renders_and_escapes_what_it_shows():
    image = np.zeros((8, 8, 3), np.uint8)
    scores = pd.DataFrame(
        [
            dict(
                image_id="p0_merge_s0",
                prompt="marco <b>bold</b> & co",
                strategy="merge",
                seed=3,
                weights=json.dumps({"character": 1.0}),
                composition_score=0.5,
                character_present=True,
                background_present=False,
                seconds=0.25,
            ),
            dict(
                image_id="p0_base_s0",
                prompt="marco",
                strategy="base",
                seed=3,
                weights="{}",
                composition_score=np.nan,
                character_present=False,
                background_present=False,
                seconds=0.125,
            ),
        ]
    )
    metrics = {
        "per_strategy": {
            "merge": {
                "composition_score": 0.5,
                "character_present": 1.0,
                "background_present": 0.0,
                "seconds_per_image": 0.25,
            },
            "base": {
                "composition_score": None,
                "character_present": 0.0,
                "background_present": 0.0,
                "seconds_per_image": 0.125,
            },
        }
    }
    tuned = {
        "prompt": "marco <i>",
        "default_weights": {"character": 1.0},
        "best_weights": {"character": 1.0},
        "default_score": 0.5,
        "best_score": 0.75,
        "trials": 2,
    }
    lora_set = LoraSet(
        loras={"character": LoraFile({}, {})},
        sources={"character": "<script>.safetensors"},
        weights={"character": 1.0},
        triggers={"character": "marco"},
    )
    html = render_report({"p0_merge_s0": image, "p0_base_s0": image}, scores, metrics, tuned, lora_set)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert html.count("<img src='data:image/png;base64,") == 2
    assert "marco &lt;b&gt;bold&lt;/b&gt; &amp; co" in html and "<b>bold" not in html
    assert "&lt;script&gt;.safetensors" in html and "marco &lt;i&gt;: " in html
    assert "<td>merge</td><td>0.500</td><td>1.000</td><td>0.000</td><td>0.250</td>" in html
    assert "<td>base</td><td></td><td>0.000</td>" in html
    assert "composition 0.50 · character yes" in html and "composition – · character no" in html
    assert "(score 0.50)" in html and "(score 0.75), 2 trials." in html

"""Composition: the base model + N LoRAs with weights -> images per strategy, per-concept scores, a weight
search, a grid and an HTML report."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
from PIL import Image

from ...backends.diffusion import make_base_model
from ...backends.embedding import make_embedder
from ...backends.segmentation import make_segmenter
from ...composition import Composer, Request, check_weight, fill_template, parse_prompt, token_count
from ...datasets import read_lora
from ...imaging import contact_sheet
from ...training_set import TrainingSet
from ...lora_format import LoraFile
from ...loop import materialise

log = logging.getLogger(__name__)


def gather_loras(character: LoraFile, background: LoraFile, composition: dict[str, Any]) -> dict[str, Any]:
    """The LoRAs to compose: the trained ones from the catalog, plus any `.safetensors` given by path in
    `composition.extra_loras` (kohya or diffusers layout; a missing file is an error naming it), with their
    weights (outside [-2, 2] is an error) and trigger phrases. Output: lora_set."""
    loras = {"character": character, "background": background}
    sources = {"character": "character.lora (training pipeline)", "background": "background.lora (training pipeline)"}
    for name, spec in (composition.get("extra_loras") or {}).items():
        loras[name], sources[name] = read_lora(spec["path"]), spec["path"]
    weights = {name: check_weight(name, float(composition["weights"].get(name, 1.0))) for name in loras}
    triggers = {name: lora.trigger or name for name, lora in loras.items()}
    return {"loras": loras, "sources": sources, "weights": weights, "triggers": triggers}


def requests_of(lora_set: dict[str, Any], composition: dict[str, Any], tokenizer) -> list[Request]:
    """Prompts from params (with optional <lora:name:w> tags), or the template filled from the triggers.
    A prompt over 77 tokens is truncated by the tokenizer, as diffusers does, with a warning."""
    prompts = composition.get("prompts") or [fill_template(t, lora_set["triggers"]) for t in composition["templates"]]
    requests = [parse_prompt(p, lora_set["weights"]) for p in prompts]
    for r in requests:
        n = token_count(tokenizer, r.prompt)
        if n > tokenizer.model_max_length:
            log.warning("Prompt has %d tokens; CLIP reads 77, the rest is truncated: '%s'", n, r.prompt)
    return requests


def compose(lora_set: dict[str, Any], composition: dict[str, Any], diffusion: dict[str, Any],
            ) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Every prompt x strategy x sample. Outputs: compositions (images) and composition_table (prompt,
    strategy, weights, seed, seconds per image)."""
    base = make_base_model(diffusion)
    composer = Composer(base, lora_set["loras"], lora_set["sources"])
    settings = composition["sampling"]
    composer.use_scheduler(settings.get("scheduler", "ddim"))
    images, rows = {}, []
    requests = requests_of(lora_set, composition, base.tokenizer)
    for p, request in enumerate(requests):
        for strategy in composition["strategies"]:
            variants = [(strategy, request)]
            if strategy == "solo":  # each LoRA alone at its weight
                variants = [(f"solo:{n}", Request(request.prompt, {n: w})) for n, w in request.weights.items() if w]
            for label, req in variants:
                for sample, seed in enumerate(settings["seeds"][: composition["num_samples"]]):
                    start = time.perf_counter()
                    image = composer.generate(label.split(":")[0], req, settings, seed)
                    key = f"p{p}_{label.replace(':', '-')}_s{sample}"
                    images[key] = (image * 255).round().astype(np.uint8)
                    used = {} if strategy == "base" else req.weights  # what this image ran with
                    rows.append(dict(image_id=key, prompt_index=p, prompt=req.prompt, strategy=label, sample=sample,
                                     seed=seed, weights=json.dumps(used), requested=json.dumps(request.weights),
                                     seconds=time.perf_counter() - start))
    return images, pd.DataFrame(rows)


def concept_centroids(character_dataset: TrainingSet, background_dataset: TrainingSet,
                      embedding: dict[str, Any]) -> dict[str, np.ndarray]:
    """The mean embedding of each concept's LoRA dataset, what a composed image is compared with."""
    embedder = make_embedder(embedding)
    centroids = {}
    for concept, dataset in (("character", character_dataset), ("background", background_dataset)):
        c = embedder([materialise(i) for i in dataset.images.values()]).mean(0)
        centroids[concept] = c / max(np.linalg.norm(c), 1e-8)
    return centroids


class ConceptScorer:
    """Per-concept presence for one image: the character (segmented, embedded, cosine to the character
    dataset's centroid) and the background (characters masked out, cosine to the background dataset's
    centroid). Pose, expression and CLIP-T join when their backends are configured."""

    def __init__(self, centroids: dict[str, np.ndarray], segmentation, embedding, scoring):
        self.segmenter, self.embedder = make_segmenter(segmentation), make_embedder(embedding)
        self.centroid = centroids
        self.thresholds = scoring["thresholds"]
        self.clip = ClipScore(scoring["clip_checkpoint"], scoring.get("clip_model", "ViT-B-32")) \
            if scoring.get("clip_checkpoint") else None

    def __call__(self, image: np.ndarray, requested: dict[str, float], prompt: str = "") -> dict[str, Any]:
        instances = self.segmenter.segment_shot([image])[0]
        scores: dict[str, Any] = {}
        if instances:
            biggest = max(instances, key=lambda i: i.mask.sum())
            ys, xs = np.nonzero(biggest.mask)
            crop = np.dstack([image, biggest.mask.astype(np.uint8) * 255])[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            scores["character_similarity"] = float(self.embedder([crop])[0] @ self.centroid["character"])
        else:
            scores["character_similarity"] = None
        plate = image.copy()
        for inst in instances:
            plate[inst.mask] = 128
        scores["background_similarity"] = float(self.embedder([plate])[0] @ self.centroid["background"])
        present = {"character": (scores["character_similarity"] or -1) >= self.thresholds["character"],
                   "background": scores["background_similarity"] >= self.thresholds["background"]}
        wanted = [c for c in present if requested.get(c, 0) > 0]
        scores.update({f"{c}_present": present[c] for c in present})
        scores["composition_score"] = float(np.mean([present[c] for c in wanted])) if wanted else None
        scores["clip_t"] = self.clip(image, prompt) if self.clip and prompt else None
        return scores


class ClipScore:
    """CLIP-T prompt adherence (CLIPScore: 100 x cosine of image and text embeddings, floored at 0) with a
    local open_clip checkpoint (`composition.scoring.clip_checkpoint`); the tokenizer is open_clip's bundled one."""

    def __init__(self, checkpoint: str, model_name: str):
        import open_clip

        from ...backends.embedding import ClipEmbedder
        from ...backends.weights import checkpoint_path

        self.image = ClipEmbedder(str(checkpoint_path(checkpoint, "composition.scoring.clip_checkpoint")), model_name)
        self.tokenizer = open_clip.get_tokenizer(model_name)

    def __call__(self, image: np.ndarray, prompt: str) -> float:
        import torch

        with torch.inference_mode():
            text = self.image.model.encode_text(self.tokenizer([prompt])).float()[0].numpy()
        text /= max(np.linalg.norm(text), 1e-8)
        return float(max(100 * float(self.image([image])[0] @ text), 0.0))


def score_compositions(compositions: dict[str, Any], composition_table: pd.DataFrame,
                       centroids: dict[str, np.ndarray], segmentation: dict[str, Any], embedding: dict[str, Any],
                       scoring: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per image and per concept; the composition score is the share of requested concepts present (not
    CLIPScore, which did not follow people's judgement in the LoRA Switch/Composite paper). Outputs:
    composition_scores (per image) and composition_metrics (per strategy)."""
    scorer = ConceptScorer(centroids, segmentation, embedding, scoring)
    rows = []
    for r in composition_table.itertuples():
        image = materialise(compositions[r.image_id])
        # scored against what the prompt asks for, whatever the strategy ran with (base: no LoRA at all)
        rows.append({"image_id": r.image_id, **scorer(image, json.loads(r.requested), r.prompt)})
    scores = composition_table.merge(pd.DataFrame(rows), on="image_id")
    per_strategy = scores.groupby("strategy").agg(
        composition_score=("composition_score", "mean"), character_present=("character_present", "mean"),
        background_present=("background_present", "mean"), seconds_per_image=("seconds", "mean"))
    if scores.clip_t.notna().any():
        per_strategy["clip_t"] = scores.groupby("strategy").clip_t.mean()
    metrics = {"per_strategy": json.loads(per_strategy.to_json(orient="index")), "images": int(len(scores)),
               "not_scored": "pose and expression (no pose/expression backend yet); clip_t without a CLIP checkpoint"}
    return scores, metrics


def tune_weights(lora_set: dict[str, Any], centroids: dict[str, np.ndarray], composition: dict[str, Any],
                 diffusion: dict[str, Any], segmentation: dict[str, Any], embedding: dict[str, Any],
                 ) -> tuple[dict[str, Any], Image.Image]:
    """A small Optuna search over the per-LoRA weights within the seed's ranges, maximising the mean
    composition score over a few seeds (merge strategy). Outputs: tuned_weights (with the evidence) and a
    before/after grid."""
    search = composition["weight_search"]
    base = make_base_model(diffusion)
    composer = Composer(base, lora_set["loras"], lora_set["sources"])
    scorer = ConceptScorer(centroids, segmentation, embedding, composition["scoring"])
    prompt = requests_of(lora_set, composition, base.tokenizer)[0].prompt
    settings = composition["sampling"]

    def evaluate(weights: dict[str, float]) -> tuple[float, list[np.ndarray]]:
        images = [composer.generate("merge", Request(prompt, weights), settings, s) for s in search["seeds"]]
        values = [scorer((im * 255).round().astype(np.uint8), weights)["composition_score"] or 0.0 for im in images]
        return float(np.mean(values)), images

    def objective(trial: optuna.Trial) -> float:
        weights = {n: trial.suggest_float(n, *search["ranges"].get(n, [lora_set["weights"][n]] * 2))
                   for n in lora_set["weights"]}
        return evaluate(weights)[0]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=search["seed"]))
    study.enqueue_trial(lora_set["weights"])  # the defaults are the first candidate
    study.optimize(objective, n_trials=search["n_trials"])
    before_score, before = evaluate(lora_set["weights"])
    best = {n: round(float(study.best_params.get(n, lora_set["weights"][n])), 3) for n in lora_set["weights"]}
    after_score, after = evaluate(best)
    grid = contact_sheet([(im * 255).round().astype(np.uint8) for im in before + after],
                         [f"before {before_score:.2f}"] * len(before) + [f"after {after_score:.2f}"] * len(after),
                         thumb=max(128, settings["width"]), cols=len(before), title=f"weights: {lora_set['weights']} -> {best}")
    return {"prompt": prompt, "default_weights": lora_set["weights"], "best_weights": best,
            "default_score": before_score, "best_score": after_score, "trials": len(study.trials)}, Image.fromarray(grid)


def composition_grid(compositions: dict[str, Any], composition_table: pd.DataFrame) -> Image.Image:
    """Rows: prompt x strategy; columns: samples; each image labelled."""
    table = composition_table.sort_values(["prompt_index", "strategy", "sample"])
    cols = int(table["sample"].max()) + 1 if len(table) else 1
    images = [materialise(compositions[i]) for i in table.image_id]
    captions = [f"p{p} {s} #{n}" for p, s, n in zip(table.prompt_index, table.strategy, table["sample"])]
    return Image.fromarray(contact_sheet(images, captions, thumb=160, cols=cols, title="prompt x strategy (rows), samples"))


def _data_uri(image) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(materialise(image))).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def composition_report(compositions: dict[str, Any], composition_scores: pd.DataFrame, metrics: dict[str, Any],
                       tuned: dict[str, Any], lora_set: dict[str, Any]) -> str:
    """A single HTML page (images embedded, opens from disk): LoRAs and weights, per-strategy scores and
    timings, every image with its prompt, strategy, weights and per-concept scores, the weight search."""
    esc = html.escape
    loras = "".join(f"<tr><td>{esc(n)}</td><td>{esc(lora_set['triggers'][n])}</td><td>{w}</td>"
                    f"<td>{esc(lora_set['sources'][n])}</td></tr>" for n, w in lora_set["weights"].items())
    strategies = "".join(f"<tr><td>{esc(s)}</td>" + "".join(
        f"<td>{'' if v.get(k) is None else f'{v[k]:.3f}'}</td>" for k in
        ("composition_score", "character_present", "background_present", "seconds_per_image")) + "</tr>"
        for s, v in metrics["per_strategy"].items())
    cards = []
    for r in composition_scores.itertuples():
        cs = "–" if pd.isna(r.composition_score) else f"{r.composition_score:.2f}"
        cards.append(f"<figure><img src='{_data_uri(compositions[r.image_id])}' width=160>"
                     f"<figcaption><b>{esc(r.strategy)}</b> seed {r.seed}<br>{esc(r.prompt)}<br>weights {esc(r.weights)}"
                     f"<br>composition {cs} · character {r.character_present} · background {r.background_present}"
                     f"<br>{r.seconds:.2f} s</figcaption></figure>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>animation-lora compositions</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
figure{{display:inline-block;width:180px;vertical-align:top;margin:6px;font-size:12px}}</style></head><body>
<h1>Compositions</h1>
<h2>LoRAs</h2><table><tr><th>LoRA</th><th>trigger</th><th>weight</th><th>source</th></tr>{loras}</table>
<h2>Per strategy</h2><table><tr><th>strategy</th><th>composition score</th><th>character present</th>
<th>background present</th><th>s / image</th></tr>{strategies}</table>
<p>Composition score: share of the requested concepts found in the image (character: segmented and close to the
character dataset; background: close to the scene's dataset).</p>
<h2>Weight search</h2><p>{esc(tuned['prompt'])}: {esc(json.dumps(tuned['default_weights']))} (score {tuned['default_score']:.2f})
→ {esc(json.dumps(tuned['best_weights']))} (score {tuned['best_score']:.2f}), {tuned['trials']} trials.</p>
<h2>Images</h2>{''.join(cards)}</body></html>"""

"""The world probe (issue 24, part 1): does the base draw what a caption asks? Probes trained on pretraining-
world pictures only (never on anything generated) tell the place type, the action, the framing and whether a
figure is there; they judge what the base draws for held-out world captions. They are the concept probes'
logistic regressions on the same embedder, with pictures of nothing (noise, blurred blobs) taught as `other`
to each, so a smear is neither a place nor a running figure.

    python -m animation_lora.pretrain.judge BASE_FOLDER [--captions 64]   # world_probe.json / .png there
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from ..demo.world import PLACES, Sample, world_sample
from ..probes.model import OTHER, LabelledPicture, ProbeParams, train_probes
from ..probes.pictures import noise_picture
from .report import held_out_world, reconstruction_psnr

log = logging.getLogger(__name__)

WORLD_CONCEPTS = ("place", "action", "framing", "figure")
# the concept probes' embedder at 224 px (at their 128 px the action probe tells 0.69 of true world pictures)
EMBEDDING = {"backend": "mobilenet_v2", "mobilenet_v2": {"batch_size": 64, "size": 224}}
SIZE = (64, 64)
TRAIN_FROM, CAPTIONS_FROM = 3 * 10**9, 4 * 10**9  # world indices no pretraining run or sample sheet reaches


def world_labels(sample: Sample) -> dict[str, str]:
    """What the caption names: the place's type, the framing, a figure or none, and the action of a full-body
    figure (an upper body's caption names it too, but without legs no probe tells walking from running: 0.69
    held out with them; a close-up's caption names none)."""
    labels = {"place": PLACES[sample.place.kind], "framing": sample.framing,
              "figure": "no" if sample.character is None else "yes"}
    if sample.framing == "full body":
        labels["action"] = sample.action
    return labels


def world_probe(pictures: int = 1600, noise: int = 200, seed: int = 0):
    """The probes, trained on `pictures` world pictures (the last quarter held out) and `noise` pictures of
    nothing labelled `other` to every concept."""
    from ..backends.embedding import make_embedder

    held = pictures // 4
    examples = [LabelledPicture(s.image, world_labels(s), i >= pictures - held, "world")
                for i in range(pictures) for s in [world_sample(seed, TRAIN_FROM + i, SIZE[0])]]
    rng = np.random.default_rng([seed, 24])
    examples += [LabelledPicture(noise_picture(rng, SIZE), dict.fromkeys(WORLD_CONCEPTS, OTHER),
                                 i >= noise - noise // 4, "world") for i in range(noise)]
    params = ProbeParams(seed=seed)
    return train_probes(examples, make_embedder(EMBEDDING), EMBEDDING, SIZE, params, WORLD_CONCEPTS)


def film_pictures(every: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Every `every`-th frame of the default demo film at the generation size (a centred square, shrunk)."""
    import cv2

    from ..demo.render import film_plates, render_frame
    from ..demo.script import make_film_spec

    spec = make_film_spec("default", seed)
    plates, side, out = film_plates(spec, seed), min(spec.width, spec.height), []
    for shot in spec.shots:
        for k in range(0, shot.n_frames, every):
            rgb = render_frame(spec, shot, k, plates)[0]
            x0, y0 = (rgb.shape[1] - side) // 2, (rgb.shape[0] - side) // 2
            out.append(cv2.resize(rgb[y0 : y0 + side, x0 : x0 + side], SIZE, interpolation=cv2.INTER_AREA))
    return out


def judge(probes, asked: list[Sample], drawn: list[np.ndarray]) -> tuple[dict, list[dict]]:
    """Per concept, the share of pictures in which the probes see what the caption of `asked` names (and the
    share seen as `other`); `figure_when_asked`: the share of captions with a character whose picture shows a
    figure. Also each picture's verdicts."""
    from ..backends.embedding import make_embedder

    seen = probes.predict(drawn, make_embedder(probes.embedding))
    truths, result = [world_labels(s) for s in asked], {}
    for concept in WORLD_CONCEPTS:
        pairs = [(t[concept], v[concept][0]) for t, v in zip(truths, seen, strict=True) if concept in t]
        result[concept] = {"recognised": round(float(np.mean([a == b for a, b in pairs])), 3),
                           "seen_as_other": round(float(np.mean([b == OTHER for _, b in pairs])), 3),
                           "asked": len(pairs)}
    figures = [v["figure"][0] == "yes" for s, v in zip(asked, seen, strict=True) if s.character is not None]
    result["figure_when_asked"] = round(float(np.mean(figures)), 3)
    return result, seen


def judge_base(base: str | Path, captions: int = 64, steps: int = 20, seed: int = 0) -> dict:
    """Draw `captions` held-out world captions with the base at `steps` DDIM steps (guidance 7.5) and judge
    them; writes `world_probe.json` (`judge`'s shares, the probes' accuracy on true world pictures beside
    them, the VAE's reconstruction of world pictures and of the demo film's frames) and `world_probe.png`
    (each caption's world picture beside the drawing and what the probes saw)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from PIL import Image

    from ..imaging import contact_sheet

    base = Path(base)
    probes = world_probe(seed=seed)
    pipe = StableDiffusionPipeline.from_pretrained(base, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    asked = [world_sample(seed, CAPTIONS_FROM + i, SIZE[0]) for i in range(captions)]
    drawn = []
    for i in range(0, captions, 16):
        batch = asked[i : i + 16]
        out = pipe([s.caption for s in batch], num_inference_steps=steps, height=SIZE[1], width=SIZE[0],
                   output_type="np", generator=torch.Generator().manual_seed(seed + i)).images
        drawn += [np.uint8(np.clip(d, 0, 1) * 255) for d in out]
    scores, seen = judge(probes, asked, drawn)
    result = {"captions": captions, "steps": steps, **scores, "probes_on_world_pictures": {
        c: round(probes.metrics[c]["held_out_accuracy"], 3) for c in WORLD_CONCEPTS},
        "vae_reconstruction": {"world": reconstruction_psnr(pipe.vae, held_out_world(seed, SIZE[0])),
                               "film": reconstruction_psnr(pipe.vae, film_pictures(seed=seed))}}
    labels = [" ".join(v[c][0][:5] for c in ("place", "action", "framing")) for v in seen]
    sheet = contact_sheet([im for s, d in zip(asked, drawn, strict=True) for im in (s.image, d)],
                          [t for s, lab in zip(asked, labels, strict=True) for t in (s.framing[:9], lab)],
                          thumb=96, cols=8, title="world (left), the base (right): what the world probe saw")
    Image.fromarray(sheet).save(base / "world_probe.png")
    (base / "world_probe.json").write_text(json.dumps(result, indent=1))
    log.info("world probe: %s", {c: result[c]["recognised"] for c in WORLD_CONCEPTS})
    return result


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("base", help="a diffusers folder (the demo base)")
    parser.add_argument("--captions", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(judge_base(args.base, args.captions, args.steps), indent=1))


if __name__ == "__main__":
    main()

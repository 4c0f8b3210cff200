"""Captions for LoRA datasets. Every caption starts with the trigger word and the caption prefix (the
tokens kohya's `keep_tokens` holds in place when it shuffles the rest).

- ``template`` (embedded): assembled from what the pipeline knows about an image (the facts a node
  passes: view, framing, action, expression …). Never a classifier's label: ImageNet names (`flatworm`,
  `maraca`) describe nothing in an animated film and would teach the LoRA wrong words.
- ``qwen2_vl`` (studio): Qwen2-VL from a local folder (`captioning.qwen2_vl.model_path`), prompt from params.

`exclude` lists words a caption must never contain for this LoRA (e.g. character names in a background
set): a fact or label containing one is left out, and a VLM sentence containing one is cut there."""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

import numpy as np

from .embedding import flatten_rgba
from .factory import backend_factory
from .weights import checkpoint_path


def _clean(text: str) -> str:
    """One tag: underscores as spaces, runs of white space as one; no control characters or U+FFFD (a VLM can
    emit bytes that decode to neither), which kohya would write into the caption file as they are."""
    text = re.sub(r"\s+", " ", text.replace("_", " "))
    kept = (c for c in text if c != "\ufffd" and not unicodedata.category(c).startswith("C"))
    return "".join(kept).strip(" ,.")


def join_caption(trigger: str, prefix: str, parts: list[str], exclude: list[str]) -> str:
    """`trigger, prefix, part, …`: tags cleaned, repeats and parts holding an excluded word left out."""
    banned = [w.lower() for w in exclude if w]
    kept = [p for p in (_clean(x) for x in parts) if p and not any(b in p.lower() for b in banned)]
    tags = [trigger] + [_clean(p) for p in prefix.split(",") if _clean(p)] + kept
    seen, out = set(), []
    for tag in tags:  # no repeated tags, also not `scene_0` after `scene 0`
        if _clean(tag).lower() not in seen:
            seen.add(_clean(tag).lower())
            out.append(tag)
    return ", ".join(out)


class Captioner(Protocol):
    def __call__(
        self,
        images: list[np.ndarray],
        facts: list[dict[str, str]],
        trigger: str,
        prefix: str,
        exclude: list[str],
    ) -> list[str]: ...


class TemplateCaptioner:
    name = "template"

    def __init__(self, fields: list[str] | None = None):
        self.fields = fields

    def __call__(self, images, facts, trigger, prefix, exclude):
        out = []
        for fact in facts:
            keys = self.fields if self.fields is not None else list(fact)
            parts = [str(fact[k]) for k in keys if fact.get(k)]
            out.append(join_caption(trigger, prefix, parts, exclude))
        return out


class Qwen2VLCaptioner:
    name = "qwen2_vl"

    def __init__(
        self,
        model_path: str | None,
        prompt: str = "Describe this image in one short sentence.",
        max_new_tokens: int = 40,
        device: str = "auto",
    ):
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

        from ..runtime import device_name

        device = device_name(device)
        path = checkpoint_path(model_path, "captioning.qwen2_vl.model_path")
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        self.model = (
            Qwen2VLForConditionalGeneration.from_pretrained(path, local_files_only=True).to(device).eval()
        )
        self.prompt, self.max_new_tokens, self.device = prompt, max_new_tokens, device

    def __call__(self, images, facts, trigger, prefix, exclude):
        import torch
        from PIL import Image

        out = []
        for image in images:
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}
            ]
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = self.processor(
                text=[text], images=[Image.fromarray(flatten_rgba(image, 255))], return_tensors="pt"
            ).to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            sentence = self.processor.batch_decode(
                ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )[0]
            for word in exclude:  # never describe what this LoRA must not learn
                sentence = re.split(re.escape(word), sentence, flags=re.IGNORECASE)[0] if word else sentence
            out.append(join_caption(trigger, prefix, [sentence], exclude))
        return out


make_captioner = backend_factory("captioning", {"template": TemplateCaptioner, "qwen2_vl": Qwen2VLCaptioner})

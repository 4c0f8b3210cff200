"""A stand-in for Qwen2-VL-2B-Instruct in its real on-disk format, so the studio captioning path
(`captioning.qwen2_vl.model_path`) can be rehearsed offline: Qwen2-VL's architecture at a tiny width (a
ViT with 2x2 patch merging feeding a Qwen2 decoder with multimodal RoPE) and its processor as the
download holds it: a byte-level BPE Qwen2 tokenizer with Qwen2-VL's special tokens, the Instruct chat
template and a `Qwen2VLImageProcessor`. The BPE is trained here on a little caption-like English.
Random weights: its captions are gibberish, that is expected."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import torch

# Qwen2-VL's added tokens, in the order (and so the relative ids) of the real vocabulary.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
# The chat template of Qwen2-VL-Instruct, as its chat_template.json holds it.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Words the BPE learns its merges from: enough for short English captions to take few tokens.
SUBJECTS = "a man|a woman|the girl|an old robot|a small dog|the hero|two children|a cartoon cat".split("|")
ACTIONS = "is standing|is running|sits|looks up|waves|is smiling|walks slowly|jumps|holds a sword".split("|")
PLACES = (
    "in a forest|on a street|in a bright room|at night|near the sea|in front of a house|on a white "
    "background|under the blue sky|in a colorful 3d render|in an animated film scene"
).split("|")
VOCAB_SIZE = 512  # at most this many BPE tokens (the real one: 151643); the special tokens come after them
MAX_PIXELS = 112 * 112  # the image processor's cap: a picture becomes at most 8x8 patches, 16 tokens
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)  # 2B: 1536, 8960, 28, 12, 2
VISION = dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2)  # 2B: 32, 1280, 16, 4


def tokenizer():
    """A `Qwen2Tokenizer` (Qwen2's pre-tokenizer, byte-level BPE) with Qwen2-VL's special tokens and chat
    template, as AutoTokenizer loads it from the real folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    qwen2 = Qwen2Tokenizer().backend_tokenizer  # train the BPE on text split exactly as Qwen2 splits it
    bpe = Tokenizer(models.BPE())
    bpe.normalizer, bpe.pre_tokenizer = qwen2.normalizer, qwen2.pre_tokenizer
    lines = [" ".join(words) + "." for words in itertools.product(SUBJECTS, ACTIONS, PLACES)]
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(lines, trainer)
    vocab = bpe.get_vocab()
    # the special tokens get fixed ids after the BPE's, so their order is the real one
    vocab.update({token: len(vocab) + i for i, token in enumerate(SPECIAL_TOKENS)})
    merges = [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]
    return Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:], model_max_length=32768, errors="replace",
        chat_template=CHAT_TEMPLATE,
    )


def image_processor():
    """Qwen2-VL's image processor as its preprocessor_config.json has it (CLIP's mean and std), but capped
    at MAX_PIXELS so a picture costs few patches on a CPU."""
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor(
        min_pixels=56 * 56, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2,
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )


def model(tok, seed: int):
    """Qwen2-VL at a tiny width, its token ids the tokenizer's, seeded (torch's global RNG is left as it
    was)."""
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    half = TEXT["hidden_size"] // TEXT["num_attention_heads"] // 2  # the rotary frequencies of a head
    config = Qwen2VLConfig(
        text_config=dict(
            **TEXT, vocab_size=len(tok), max_position_embeddings=32768, rms_norm_eps=1e-6,
            max_window_layers=TEXT["num_hidden_layers"],
            # multimodal RoPE: a head's frequencies split 1:1.5:1.5 between time, height and width
            # (2B: 16, 24, 24); the default section would not fit this small a head
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                             "mrope_section": [half // 4, half * 3 // 8, half * 3 // 8]},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        # the merger projects each 2x2 group of patches to the text width: vision hidden_size
        vision_config=dict(**VISION, hidden_size=TEXT["hidden_size"], patch_size=14, spatial_merge_size=2,
                           temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        # untied (as the 7B; the 2B ties them): tied random embeddings only repeat the prompt's last token
        # ("\n"), a head of its own says random words, so the captions have a sentence to carry
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Qwen2VLForConditionalGeneration(config).eval()
    # as the Instruct folder's generation_config.json: a reply ends at <|im_end|> (or <|endoftext|>)
    net.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    return net


def write(folder: Path, seed: int = 0) -> dict:
    """The stand-in's folder (config.json, generation_config.json, model.safetensors, tokenizer files, chat
    template, preprocessor_config.json). Returns the parameters that point `conf/studio` at it."""
    folder.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    model(tok, seed).save_pretrained(folder, safe_serialization=True)
    # Saved one by one, as the download holds them: a Qwen2VLProcessor's own save_pretrained would
    # write one processor_config.json (with a video processor) instead of preprocessor_config.json.
    tok.save_pretrained(folder)
    image_processor().save_pretrained(folder)
    return {"captioning": {"qwen2_vl": {"model_path": str(folder)}}}

"""OpenAI CLIP's tokenizer, offline: its `vocab.json` and `merges.txt` rebuilt once from open_clip's bundled
BPE file (ids match OpenAI CLIP's) and written to `$XDG_CACHE_HOME/animation_lora/clip_tokenizer/`."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from .weights import package_file


def cache_folder(name: str) -> Path:
    """A folder of ours in the user's cache (`$XDG_CACHE_HOME`, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "animation_lora" / name


def write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: processes building the same file at once never read a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False
    ) as f:
        f.write(text)
    os.replace(f.name, path)


@lru_cache(maxsize=1)
def clip_tokenizer_files() -> tuple[str, str]:
    """vocab.json and merges.txt of OpenAI CLIP's tokenizer, rebuilt once from open_clip's BPE file (the
    folder is named by that file's content, so another open_clip version gets its own)."""
    from open_clip.tokenizer import bytes_to_unicode

    packed = Path(package_file("open_clip", "bpe_simple_vocab_16e6.txt.gz")).read_bytes()
    folder = cache_folder("clip_tokenizer") / hashlib.sha256(packed).hexdigest()[:16]
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    if not (vocab_file.exists() and merges_file.exists()):
        lines = gzip.decompress(packed).decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
        vocab = list(bytes_to_unicode().values())
        vocab += [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        write_atomically(vocab_file, json.dumps({t: i for i, t in enumerate(vocab)}))
        write_atomically(merges_file, "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return str(vocab_file), str(merges_file)


def clip_tokenizer():
    """A transformers `CLIPTokenizer` (77 tokens) from those files."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_tokenizer_files()
    return CLIPTokenizer(vocab, merges, model_max_length=77)

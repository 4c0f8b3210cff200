"""Curate in a browser: `python -m animation_lora.curate` (or `make curate`) opens the latest run of the
film on http://127.0.0.1:8765 — one page per kind (characters, scenes, poses, expressions) where a person
names, merges, splits, moves, excludes and includes, edits captions and tags and ticks what to train. Every
decision is saved to the film's curation file (`animation_lora.curation`), which the pipelines read."""

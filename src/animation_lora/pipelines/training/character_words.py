"""The character datasets as trained: each caption gains the view, the action and the expression the pose
and expression pipelines found for its instance (issue 12), so that the character trigger binds to
identity."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...lora_dataset import TrainingSet, with_tags


def instance_words(action_table: pd.DataFrame, expression_table: pd.DataFrame) -> dict[str, list[str]]:
    """{instance id: [view, action, expression]}: the view (`facing left`…) where the pose was seen, the
    action where one was named, the expression where a face was kept."""
    words: dict[str, list[str]] = {}
    for row in action_table.itertuples():
        seen = [getattr(row, "facing", ""), "" if row.action == "unlabeled" else row.action]
        words.setdefault(row.instance_id, []).extend(w for w in seen if isinstance(w, str) and w)
    for row in expression_table[expression_table.expression != ""].itertuples():
        words.setdefault(row.instance_id, []).append(row.expression)
    return words


def tag_character_datasets(
    main: TrainingSet,
    each: dict[str, TrainingSet],
    action_table: pd.DataFrame,
    expression_table: pd.DataFrame,
) -> dict[str, Any]:
    """Inputs: character.lora_dataset(s), action_table, expression_table. Outputs: tagged_dataset,
    tagged_datasets (character.tagged_dataset(s): what the character LoRAs train on)."""
    words = instance_words(action_table, expression_table)
    return {
        "tagged_dataset": with_tags(main, words),
        "tagged_datasets": {name: with_tags(data, words) for name, data in each.items()},
    }

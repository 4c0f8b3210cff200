"""The character datasets as trained: each caption gains the action and the expression the pose and
expression pipelines found for its instance (issue 12), so that the character trigger binds to identity."""

from __future__ import annotations

import pandas as pd

from ...training_set import TrainingSet, with_tags


def instance_words(action_table: pd.DataFrame, expression_table: pd.DataFrame) -> dict[str, list[str]]:
    """{instance id: [action, expression]} for the instances with a named action / a kept expression."""
    words: dict[str, list[str]] = {}
    for row in action_table[action_table.action != "unlabeled"].itertuples():
        words.setdefault(row.instance_id, []).append(row.action)
    for row in expression_table[expression_table.expression != ""].itertuples():
        words.setdefault(row.instance_id, []).append(row.expression)
    return words


def tag_character_datasets(
    main: TrainingSet,
    each: dict[str, TrainingSet],
    action_table: pd.DataFrame,
    expression_table: pd.DataFrame,
) -> tuple[TrainingSet, dict[str, TrainingSet]]:
    """Outputs: character.tagged_dataset, character.tagged_datasets (what the character LoRAs train on)."""
    words = instance_words(action_table, expression_table)
    return with_tags(main, words), {name: with_tags(data, words) for name, data in each.items()}

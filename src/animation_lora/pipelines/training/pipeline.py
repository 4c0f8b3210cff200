"""`kedro run --pipelines=training`: the character captions gain the action and expression words, the
search on the character set, then the same modular training pipeline under each LoRA type's namespace
(character, background, pose, expression) with the searched hyper-parameters (the brief: the character
search's best parameters transfer)."""

from kedro.pipeline import Node, Pipeline

from ...lora_format import LORA_TYPES
from .character_words import tag_character_datasets
from .nodes import TRAINED, search_hyperparameters, train
from .per_name import train_each

# what each type's LoRAs train on: `<type>.lora_dataset(s)`, the character's with the action/expression words
TRAINED_ON = {kind: (f"{kind}.lora_dataset", f"{kind}.lora_datasets") for kind in LORA_TYPES}
TRAINED_ON["character"] = ("character.tagged_dataset", "character.tagged_datasets")


def outputs(*names: str) -> dict[str, str]:
    """A node's dict outputs, each key saved to the dataset of its name."""
    return {name: name for name in names}


def lora_training() -> Pipeline:
    """One LoRA type (a namespace): the main LoRA, then one per selected name, the main one not trained
    again."""
    settings = ["best_hyperparameters", "params:training", "params:diffusion"]
    return Pipeline([
        Node(train, ["lora_dataset", *settings], outputs(*TRAINED), name="train_lora_node"),
        Node(train_each,
             ["lora_datasets", "lora_dataset", "lora", "lora_epochs", "training_history", "training_samples",
              *settings],
             outputs("loras", "lora_epochs_by_name", "training_history_by_name", "samples_by_name"),
             name="train_each_lora_node"),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    character, characters = TRAINED_ON["character"]
    search = Pipeline([
        Node(tag_character_datasets,
             ["character.lora_dataset", "character.lora_datasets", "action_table", "expression_table"],
             {"tagged_dataset": character, "tagged_datasets": characters},
             name="tag_character_datasets_node"),
        Node(search_hyperparameters, [character, "params:training", "params:diffusion"],
             outputs("best_hyperparameters", "hpo_trials", "hpo_convergence"),
             name="search_hyperparameters_node"),
    ])
    trainings = [Pipeline(lora_training(), namespace=kind, parameters={"params:training", "params:diffusion"},
                          inputs={"best_hyperparameters": "best_hyperparameters",
                                  "lora_dataset": TRAINED_ON[kind][0], "lora_datasets": TRAINED_ON[kind][1]})
                 for kind in LORA_TYPES]
    return search + sum(trainings, Pipeline([]))

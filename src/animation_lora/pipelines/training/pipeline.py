"""`kedro run --pipelines=training`: the search on the character set, then the same modular training
pipeline under each LoRA type's namespace (character, background, pose, expression) with the searched
hyper-parameters (the brief: the character search's best parameters transfer)."""

from kedro.pipeline import Node, Pipeline

from ...lora_format import LORA_TYPES
from .nodes import search_hyperparameters, train
from .per_name import train_each


def lora_training() -> Pipeline:
    inputs = ["lora_dataset", "best_hyperparameters", "params:training", "params:diffusion"]
    return Pipeline([Node(train, inputs,
                          ["lora", "lora_epochs", "training_history", "training_metrics", "training_samples"],
                          name="train_lora_node"),
                     Node(train_each, ["lora_datasets", "lora_dataset", "lora", "training_samples",
                                       *inputs[1:]], ["loras", "samples_by_name"],
                          name="train_each_lora_node")])


def create_pipeline(**kwargs) -> Pipeline:
    search = Pipeline([
        Node(search_hyperparameters, ["character.lora_dataset", "params:training", "params:diffusion"],
             ["best_hyperparameters", "hpo_trials", "hpo_convergence"], name="search_hyperparameters_node"),
    ])
    trainings = [Pipeline(lora_training(), namespace=kind, inputs={"best_hyperparameters"},
                          parameters={"params:training", "params:diffusion"})
                 for kind in LORA_TYPES]
    return search + sum(trainings, Pipeline([]))

"""Custom Kedro datasets: the input film, versioned image folders, kohya LoRA dataset folders, the demo
ground truth."""

from .film import Film, FilmDataset
from .ground_truth import GroundTruthDataset
from .image_folder import ImageFolderDataset
from .kohya import KohyaDatasetFolder
from .lora_file import LoraFileDataset, LoraFolderDataset, LoraInputFolderDataset, read_lora

__all__ = [
    "Film",
    "FilmDataset",
    "GroundTruthDataset",
    "ImageFolderDataset",
    "KohyaDatasetFolder",
    "LoraFileDataset",
    "LoraFolderDataset",
    "LoraInputFolderDataset",
    "read_lora",
]

"""Custom Kedro datasets: the input film, versioned image folders, kohya LoRA dataset folders, the demo
ground truth."""

from .curation_file import CurationFile
from .export import ExportFolder
from .film import Film, FilmDataset
from .ground_truth import GroundTruthDataset
from .image_folder import ImageFolderDataset
from .kohya import KohyaDatasetFolder, KohyaDatasetsFolder
from .lora_file import LoraFileDataset, LoraFolderDataset, LoraInputFolderDataset, read_lora
from .probe_file import ProbeFileDataset

__all__ = [
    "CurationFile",
    "ExportFolder",
    "Film",
    "FilmDataset",
    "GroundTruthDataset",
    "ImageFolderDataset",
    "KohyaDatasetFolder",
    "KohyaDatasetsFolder",
    "LoraFileDataset",
    "LoraFolderDataset",
    "LoraInputFolderDataset",
    "ProbeFileDataset",
    "read_lora",
]

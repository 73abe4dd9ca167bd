"""The course's models and data, all loadable offline: ``load_model``, ``load_dataset``,
``list_models``, ``load_photo``."""
from .registry import LoadedModel, list_datasets, list_models, load_dataset, load_model
from .imagenet import PHOTOS, imagenet_labels, load_photo
from .weights import WeightFileError

__all__ = [
    "LoadedModel",
    "PHOTOS",
    "WeightFileError",
    "imagenet_labels",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_model",
    "load_photo",
]

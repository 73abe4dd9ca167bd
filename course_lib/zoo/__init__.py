"""The course's models and data, all loadable offline: ``load_model``, ``load_dataset``,
``list_models``, ``load_photo``."""
from .registry import LoadedModel, list_datasets, list_models, load_dataset, load_model
from .imagenet import PHOTOS, imagenet_labels, load_photo
from .weights import WeightFileError
from . import text, online  # noqa: F401  (registers minilm, minilm_sentiment, sentiment, the online swaps, cifar10)
from .online import OfflineError
from .text import SentimentClassifier, make_sentiment_corpus
from . import shapes, shapes_models  # noqa: F401  (registers "shapes" and the Shapes models)
from .shapes import ShapesBatch, ShapesDataset, add_tag, make_concept_images, make_shapes

__all__ = [
    "LoadedModel",
    "OfflineError",
    "PHOTOS",
    "SentimentClassifier",
    "ShapesBatch",
    "ShapesDataset",
    "WeightFileError",
    "add_tag",
    "imagenet_labels",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_model",
    "load_photo",
    "make_concept_images",
    "make_sentiment_corpus",
    "make_shapes",
]

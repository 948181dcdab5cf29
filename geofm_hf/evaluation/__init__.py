"""Scoring segmentation models on labelled sections.

* :mod:`.inference`: the one batched routine that feeds and scores labelled sections, used by validation during
  training and by :func:`evaluate_model` alike;
* :mod:`.evaluate`: :func:`evaluate_model` on a dataset split, loading a trained model and a split, task checks;
* :mod:`.results`: the results JSON and the file names of an evaluation folder;
* :mod:`.plots`: the pictures of an evaluation (confusion matrix, example sections);
"""

from .evaluate import check_same_task, dataset_label_names, evaluate_model, load_model, load_model_and_processor, load_split
from .inference import REQUIRED_COLUMNS, LabelledSections, PadCollator, evaluation_mode, resolve_device, score_batch
from .plots import plot_example
from .results import CONFUSION_MATRIX_FILE, EVAL_RESULTS_FILE, write_results_json

__all__ = [
    "CONFUSION_MATRIX_FILE",
    "EVAL_RESULTS_FILE",
    "REQUIRED_COLUMNS",
    "LabelledSections",
    "PadCollator",
    "check_same_task",
    "dataset_label_names",
    "evaluate_model",
    "evaluation_mode",
    "load_model",
    "load_model_and_processor",
    "load_split",
    "plot_example",
    "resolve_device",
    "score_batch",
    "write_results_json",
]

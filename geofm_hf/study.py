"""What the study did with each task: a reference record, kept apart from the task registry.

Guo, Wu et al. (2025), *Cross-Domain Foundation Model Adaptation: Pioneering Computer Vision Models for Geophysical
Data Analysis*, released its data as Zenodo record 12798750 (``data/<folder>/{train,valid}/<image>/N.dat``; its
``valid`` folder is the test split). The readers of that layout, model cards comparing with the study and the GPU
reproduction read this record; models and their configs never do.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models.tasks import get_task

STUDY_CITATION = """@article{guo2025crossdomain,
  title   = {Cross-Domain Foundation Model Adaptation: Pioneering Computer Vision Models for Geophysical Data Analysis},
  author  = {Guo, Zhixiang and Wu, Xinming and Liang, Luming and Sheng, Hanlin and Chen, Nuo and Bi, Zhengfa},
  journal = {Journal of Geophysical Research: Machine Learning and Computation},
  year    = {2025},
  note    = {arXiv:2408.12396}
}"""


@dataclass(frozen=True)
class StudyLayout:
    """Where the study's release keeps a task: ``data/<folder>/{train,valid}/<image_dir|label_dir>/N.dat``."""

    folder: str
    image_dir: str
    label_dir: str


@dataclass(frozen=True)
class StudyScores:
    """Headline mIoU of the study: best of its four DINOv2 decoders, and its UNet baseline."""

    best_decoder_miou: float
    unet_miou: float


@dataclass(frozen=True)
class StudyTask:
    """The study's treatment of one task.

    Attributes:
    layout: where its release stores the task.
    native_size: (n1, n2) of its sections.
    splits: number of (train, test) sections in its release.
    scores: its mIoU, for model cards.
    batch_size: per-device batch size of its run scripts (before its flip doubling).
    """

    layout: StudyLayout
    native_size: tuple[int, int]
    splits: tuple[int, int]
    scores: StudyScores
    batch_size: int


STUDY: dict[str, StudyTask] = {
    "seismic-facies": StudyTask(
        layout=StudyLayout("seismicFace", "input", "target"),
        native_size=(1006, 782),
        splits=(250, 45),
        scores=StudyScores(best_decoder_miou=0.689, unet_miou=0.549),
        batch_size=3,
    ),
    "salt": StudyTask(
        layout=StudyLayout("geobody", "input", "target"),
        native_size=(224, 224),
        splits=(3000, 1000),
        scores=StudyScores(best_decoder_miou=0.897, unet_miou=0.864),
        batch_size=32,
    ),
    "crater": StudyTask(
        layout=StudyLayout("crater", "image", "label"),
        native_size=(1022, 1022),
        splits=(1000, 199),
        scores=StudyScores(best_decoder_miou=0.695, unet_miou=0.581),
        batch_size=3,
    ),
    "das-event": StudyTask(
        layout=StudyLayout("das", "image", "label"),
        native_size=(512, 512),
        splits=(115, 28),
        scores=StudyScores(best_decoder_miou=0.867, unet_miou=0.727),
        batch_size=6,
    ),
    "fault": StudyTask(
        layout=StudyLayout("deepFault", "image", "label"),
        native_size=(896, 896),
        splits=(1081, 269),
        scores=StudyScores(best_decoder_miou=0.761, unet_miou=0.686),
        batch_size=6,
    ),
}


def study_task(task: str) -> StudyTask:
    """The study's record of ``task`` (a name or alias); unknown tasks raise ``KeyError`` naming the choices."""
    return STUDY[get_task(task).study_name]

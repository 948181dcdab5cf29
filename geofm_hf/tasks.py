"""The five geophysical segmentation tasks of the study, as data.

Every task-dependent choice in the package (classes, default decoder and loss, the study's data layout and scores,
the Hub repo a dataset is published to) is read from :data:`TASKS`. Adding a task means adding one
:class:`TaskSpec` here, never an ``if task == ...`` branch elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StudyLayout:
    """Where the study's Zenodo release (record 12798750) keeps a task: ``data/<folder>/{train,valid}/<image>/N.dat``."""

    folder: str
    image_dir: str
    label_dir: str


@dataclass(frozen=True)
class StudyScores:
    """Headline mIoU of the study (Guo, Wu et al. 2025): best of its four DINOv2 decoders, and its UNet baseline."""

    best_decoder_miou: float
    unet_miou: float


@dataclass(frozen=True)
class TaskSpec:
    """One segmentation task.

    Attributes:
        name: canonical task name (also the dataset config name).
        label_names: class names, index = class id stored in the ``label`` column.
        native_size: (n1, n2) of the study's sections.
        study_splits: number of (train, test) sections in the study's release; its ``valid`` folder is the test split.
        study_scores: the study's mIoU, for model cards.
        study_batch_size: per-device batch size of the study's run scripts (before its flip doubling).
        study_layout: where the study's release stores the task.
        default_decoder: decoder used when none is given (the study's shipped run scripts all use MLA).
        default_loss: loss weights, see :class:`~geofm_hf.configuration_geofm.GeoFMConfig`.
        metrics: metric names reported for the task.
        hub_dataset_id: default Hub repo of the published dataset.
        source: where the original data come from.
        license: licence of the source data.
        citation: BibTeX of the source data.
        aliases: other names accepted by :func:`get_task`.
    """

    name: str
    label_names: tuple[str, ...]
    native_size: tuple[int, int]
    study_splits: tuple[int, int]
    study_scores: StudyScores
    study_batch_size: int
    study_layout: StudyLayout
    default_decoder: str
    default_loss: dict[str, float]
    hub_dataset_id: str
    source: str
    license: str
    citation: str
    metrics: tuple[str, ...] = ("mean_iou", "mean_pixel_accuracy", "per_class_iou", "f1")
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}


STUDY_CITATION = """@article{guo2025crossdomain,
  title   = {Cross-Domain Foundation Model Adaptation: Pioneering Computer Vision Models for Geophysical Data Analysis},
  author  = {Guo, Zhixiang and Wu, Xinming and Liang, Luming and Sheng, Hanlin and Chen, Nuo and Bi, Zhengfa},
  journal = {Journal of Geophysical Research: Machine Learning and Computation},
  year    = {2025},
  note    = {arXiv:2408.12396}
}"""

# Binary tasks are dominated by background pixels: cross-entropy alone tends to predict "nothing".
_BINARY_LOSS = {"cross_entropy": 1.0, "dice": 1.0}

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="seismic-facies",
            aliases=("facies", "seam"),
            label_names=(
                "basement",
                "slope_mudstone_a",
                "mass_transport_complex",
                "slope_mudstone_b",
                "slope_valley",
                "submarine_canyon",
            ),
            native_size=(1006, 782),
            study_splits=(250, 45),
            study_scores=StudyScores(best_decoder_miou=0.689, unet_miou=0.549),
            study_batch_size=3,
            study_layout=StudyLayout("seismicFace", "input", "target"),
            default_decoder="mla",
            default_loss={"cross_entropy": 1.0},
            hub_dataset_id="geofm-hf/seismic-facies",
            source="SEAM AI 2020 facies challenge (Parihaka, New Zealand); also F3 Netherlands and Penobscot sections",
            license="cc-by-4.0",
            citation="""@misc{seamai2020,
  title = {SEAM AI Applied Geoscience GPU Deep Learning Hackathon: facies classification (Parihaka 3D)},
  author = {{SEG Advanced Modeling Corporation}},
  year = {2020}
}""",
        ),
        TaskSpec(
            name="salt",
            aliases=("geobody", "tgs"),
            label_names=("background", "salt"),
            native_size=(224, 224),
            study_splits=(3000, 1000),
            study_scores=StudyScores(best_decoder_miou=0.897, unet_miou=0.864),
            study_batch_size=32,
            study_layout=StudyLayout("geobody", "input", "target"),
            default_decoder="mla",
            default_loss={"cross_entropy": 1.0},
            hub_dataset_id="geofm-hf/salt",
            source="TGS Salt Identification Challenge (Kaggle, 2018)",
            license="other",
            citation="""@misc{tgs2018salt,
  title = {TGS Salt Identification Challenge},
  author = {Howard, Addison and others},
  year = {2018},
  publisher = {Kaggle}
}""",
        ),
        TaskSpec(
            name="crater",
            aliases=("lunar-crater",),
            label_names=("background", "crater"),
            native_size=(1022, 1022),
            study_splits=(1000, 199),
            study_scores=StudyScores(best_decoder_miou=0.695, unet_miou=0.581),
            study_batch_size=3,
            study_layout=StudyLayout("crater", "image", "label"),
            default_decoder="mla",
            default_loss=_BINARY_LOSS,
            hub_dataset_id="geofm-hf/crater",
            source="Lunar imagery and DEMs (Chang'E / LRO); crater outlines rasterised from boxes or catalogues",
            license="other",
            citation="""@article{yang2020craterdanet,
  title = {Lunar impact crater identification and age estimation with Chang'E data by deep and transfer learning},
  author = {Yang, Chen and others},
  journal = {Nature Communications},
  year = {2020}
}""",
        ),
        TaskSpec(
            name="das-event",
            aliases=("das",),
            label_names=("background", "event"),
            native_size=(512, 512),
            study_splits=(115, 28),
            study_scores=StudyScores(best_decoder_miou=0.867, unet_miou=0.727),
            study_batch_size=6,
            study_layout=StudyLayout("das", "image", "label"),
            default_decoder="mla",
            default_loss=_BINARY_LOSS,
            hub_dataset_id="geofm-hf/das-event",
            source="Distributed acoustic sensing earthquake records (Biondi et al. 2023; PoroTomo)",
            license="cc-by-4.0",
            citation="""@article{biondi2023das,
  title = {An upper-crust lid over the Long Valley magma chamber},
  author = {Biondi, Ettore and others},
  journal = {Science Advances},
  year = {2023},
  doi = {10.1126/sciadv.adi9878}
}""",
        ),
        TaskSpec(
            name="fault",
            aliases=("deep-fault", "deepfault"),
            label_names=("background", "fault"),
            native_size=(896, 896),
            study_splits=(1081, 269),
            study_scores=StudyScores(best_decoder_miou=0.761, unet_miou=0.686),
            study_batch_size=6,
            study_layout=StudyLayout("deepFault", "image", "label"),
            default_decoder="mla",
            default_loss=_BINARY_LOSS,
            hub_dataset_id="geofm-hf/fault",
            source="Seismic surveys with fault labels (Wu et al.); synthetic sections in the manner of Wu et al. 2019",
            license="other",
            citation="""@article{wu2019faultseg,
  title = {FaultSeg3D: Using synthetic data sets to train an end-to-end convolutional neural network for 3D seismic fault segmentation},
  author = {Wu, Xinming and Liang, Luming and Shi, Yunzhi and Fomel, Sergey},
  journal = {Geophysics},
  year = {2019},
  doi = {10.1190/geo2018-0646.1}
}""",
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """Return the :class:`TaskSpec` called ``name`` (or one of its aliases); raise ``KeyError`` naming the choices."""
    key = name.strip().lower().replace("_", "-")
    for spec in TASKS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    choices = ", ".join(f"{s.name} (alias {', '.join(s.aliases)})" for s in TASKS.values())
    raise KeyError(f"Unknown task {name!r}. Known tasks: {choices}.")

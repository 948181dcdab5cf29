"""The geophysical segmentation tasks, as data.

A task is what a model is trained for: its classes, its default loss and decoder, where its dataset is published,
the licence and citation of its data, and its Hub tags. Every task-dependent choice in the package is read from
:data:`TASKS`; adding a task means adding one :class:`TaskSpec` here, never an ``if task == ...`` branch elsewhere.
What the study did with each task (its data layout, sizes, splits and scores) is a separate record,
:mod:`geofm_hf.study`.

A saved model config names its task as metadata only: loading it never consults this registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .decoders.registry import DEFAULT_DECODER


@dataclass(frozen=True)
class TaskSpec:
    """One segmentation task.

    Attributes:
        name: canonical task name (also the dataset config name).
        label_names: class names, index = class id stored in the ``label`` column.
        default_loss: loss weights, see :class:`~geofm_hf.models.segmenter.GeoSegmentationConfig`.
        hub_dataset_id: default Hub repo of the published dataset.
        source: where the original data come from.
        license: licence of the source data.
        citation: BibTeX of the source data.
        tags: Hub tags of the task's datasets and models.
        default_decoder: decoder used when none is given.
        metrics: metric names reported for the task.
        aliases: other names accepted by :func:`get_task`.
        study_task: the study's task this one is compared with (default: its own name); a task with its own class
            set for a study task's problem (Penobscot's intervals for facies) names the study task here.
    """

    name: str
    label_names: tuple[str, ...]
    default_loss: dict[str, float]
    hub_dataset_id: str
    source: str
    license: str
    citation: str
    tags: tuple[str, ...] = ()
    default_decoder: str = DEFAULT_DECODER
    metrics: tuple[str, ...] = ("mean_iou", "mean_pixel_accuracy", "per_class_iou", "f1")
    aliases: tuple[str, ...] = field(default_factory=tuple)
    study_task: str | None = None

    @property
    def study_name(self) -> str:
        return self.study_task or self.name

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def config_fields(self) -> dict:
        """Model config fields the task fixes: its canonical name, classes and default loss."""
        return {
            "task": self.name,
            "id2label": self.id2label,
            "label2id": self.label2id,
            "loss_weights": dict(self.default_loss),
        }


# Binary tasks are dominated by background pixels: cross-entropy alone tends to predict "nothing".
_BINARY_LOSS = {"cross_entropy": 1.0, "dice": 1.0}

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="seismic-facies",
            tags=("seismic", "seismic-interpretation", "facies"),
            aliases=("facies", "seam"),
            label_names=(
                "basement",
                "slope_mudstone_a",
                "mass_transport_complex",
                "slope_mudstone_b",
                "slope_valley",
                "submarine_canyon",
            ),
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
            name="facies-penobscot",
            tags=("seismic", "seismic-interpretation", "facies", "penobscot"),
            aliases=("penobscot",),
            # Penobscot's interpretation gives the intervals between its picked horizons, top to bottom; they are
            # stratigraphic units of the Scotian shelf, not SEAM's facies, so they keep their own ids.
            label_names=tuple(f"interval_{index}" for index in range(8)),
            default_loss={"cross_entropy": 1.0},
            hub_dataset_id="geofm-hf/facies-penobscot",
            source="Penobscot 3D (Nova Scotia) with the interpretation of Baroni et al. (2019): 8 intervals",
            license="cc-by-4.0",
            citation="""@misc{baroni2019penobscot,
  title = {Penobscot Dataset: Fostering Machine Learning Development for Seismic Interpretation},
  author = {Baroni, Lais and others},
  year = {2019}
}""",
            study_task="seismic-facies",
        ),
        TaskSpec(
            name="salt",
            tags=("seismic", "seismic-interpretation", "salt", "geobody"),
            aliases=("geobody", "tgs"),
            label_names=("background", "salt"),
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
            tags=("planetary-science", "moon", "remote-sensing", "crater"),
            aliases=("lunar-crater",),
            label_names=("background", "crater"),
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
            tags=("seismology", "distributed-acoustic-sensing", "earthquake"),
            aliases=("das",),
            label_names=("background", "event"),
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
            tags=("seismic", "seismic-interpretation", "fault"),
            aliases=("deep-fault", "deepfault"),
            label_names=("background", "fault"),
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

"""Settings every geofm segmenter shares: input channels, the task and the loss."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .losses import LOSS_TERMS
from .tasks import get_task


@strict
class GeoSegmentationConfig(PreTrainedConfig):
    r"""
    Base of the geofm configs.

    Args:
        in_channels (`int`, *optional*, defaults to 1):
            Channels of the input sections (1 for seismic amplitude).
        loss_weights (`dict[str, float]`, *optional*):
            Loss terms and their weights, from `cross_entropy`, `dice` (macro soft Dice) and `focal`. Defaults to the
            task's default loss, else `{"cross_entropy": 1.0}`.
        class_weights (`list[float]`, *optional*):
            Per-class weights applied by every loss term.
        ignore_index (`int`, *optional*, defaults to 255):
            Label value excluded from loss and metrics.
        focal_gamma (`float`, *optional*, defaults to 2.0):
            Focusing parameter of the focal loss.
        task (`str`, *optional*):
            Name of the task in `geofm_hf.tasks.TASKS` the model is for.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of freshly initialised weights.
    """

    in_channels: int = 1
    loss_weights: dict | None = None
    class_weights: list[float] | None = None
    ignore_index: int = 255
    focal_gamma: float = 2.0
    task: str | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.loss_weights is None:
            self.loss_weights = dict(get_task(self.task).default_loss) if self.task else {"cross_entropy": 1.0}
        self._check_common_settings()

    def _check_common_settings(self) -> None:
        """Refuse task, input and loss settings the model cannot use, saying what is expected (plain ValueError)."""
        name = type(self).__name__
        unknown_losses = set(self.loss_weights) - set(LOSS_TERMS)
        if unknown_losses:
            raise ValueError(f"{name}.loss_weights has unknown terms {sorted(unknown_losses)}; known: {sorted(LOSS_TERMS)}")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(f"{name}.class_weights has {len(self.class_weights)} entries; expected num_labels={self.num_labels}")
        if self.in_channels < 1:
            raise ValueError(f"{name}.in_channels must be >= 1; got {self.in_channels}")
        if self.task is not None:
            get_task(self.task)


def task_fields(task: str) -> dict:
    """Config fields a task fixes: its canonical name and classes."""
    spec = get_task(task)
    return {"task": spec.name, "id2label": spec.id2label, "label2id": spec.label2id}

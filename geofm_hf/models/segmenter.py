"""What every geofm segmenter shares: the config base (input channels, task, loss), input checks, padding to the
backbone's multiple, weight initialisation, the loss and the output."""

from __future__ import annotations

import math
import os

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SemanticSegmenterOutput

from .geofm.image_processing_geofm import GeoFMImageProcessor
from .geofm.pipeline_geofm import SectionSegmentationPipeline, custom_pipelines_entry
from .losses import LOSS_TERMS, SegmentationLoss
from .remote_code import auto_map, save_model_code

DEFAULT_LOSS = {"cross_entropy": 1.0}


@strict
class GeoSegmentationConfig(PreTrainedConfig):
    r"""
    Base of the geofm configs.

    Args:
        in_channels (`int`, *optional*, defaults to 1):
            Channels of the input sections (1 for seismic amplitude).
        loss_weights (`dict[str, float]`, *optional*):
            Loss terms and their weights, from `cross_entropy`, `dice` (macro soft Dice), `focal` and `lovasz`
            (Lovász-softmax, a surrogate of one minus the IoU). Defaults to
            `{"cross_entropy": 1.0}`; building from a task name uses the task's default loss.
        class_weights (`list[float]`, *optional*):
            Per-class weights applied by every loss term.
        ignore_index (`int`, *optional*, defaults to 255):
            Label value excluded from loss and metrics.
        focal_gamma (`float`, *optional*, defaults to 2.0):
            Focusing parameter of the focal loss.
        task (`str`, *optional*):
            Name of the task the model is for. Metadata only: a saved config loads whatever task it names, including
            tasks this version of geofm_hf does not know.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of freshly initialised weights.
        compute_scale (`float`, *optional*, defaults to 1.0):
            Factor by which the model resizes its input (bilinear) before the network sees it; the logits are resized
            back to the input's own size. Above 1 a patch-14 ViT sees small sections (a 101 x 101 TGS patch: 8 x 8
            tokens at 1, 16 x 16 at 2.2) with more tokens, at the cost of more compute.
    """

    in_channels: int = 1
    loss_weights: dict | None = None
    class_weights: list[float] | None = None
    ignore_index: int = 255
    focal_gamma: float = 2.0
    task: str | None = None
    initializer_range: float = 0.02
    compute_scale: float = 1.0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.loss_weights is None:
            self.loss_weights = dict(DEFAULT_LOSS)
        self._check_common_settings()

    def _check_common_settings(self) -> None:
        """Refuse input and loss settings the model cannot use, saying what is expected (plain ValueError)."""
        name = type(self).__name__
        unknown_losses = set(self.loss_weights) - set(LOSS_TERMS)
        if unknown_losses:
            raise ValueError(f"{name}.loss_weights has unknown terms {sorted(unknown_losses)}; known: {sorted(LOSS_TERMS)}")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(f"{name}.class_weights has {len(self.class_weights)} entries; expected num_labels={self.num_labels}")
        if self.in_channels < 1:
            raise ValueError(f"{name}.in_channels must be >= 1; got {self.in_channels}")
        if not (math.isfinite(self.compute_scale) and self.compute_scale > 0):
            raise ValueError(f"{name}.compute_scale must be a finite number > 0; got {self.compute_scale}")


def check_pixel_values(pixel_values: torch.Tensor, in_channels: int, min_size: int) -> None:
    """Refuse input the model would otherwise misread: wrong rank, wrong channel count, smaller than ``min_size``."""
    if pixel_values.ndim != 4:
        raise ValueError(f"pixel_values must be (batch, channels, height, width); got shape {tuple(pixel_values.shape)}")
    if pixel_values.shape[1] != in_channels:
        raise ValueError(
            f"pixel_values has {pixel_values.shape[1]} channels but the model's config.in_channels is {in_channels}"
        )
    # One comparison per side (not ``min``): under torch.export each becomes a bound on its own dimension, where
    # ``min(height, width)`` would also fix which side is the smaller one.
    height, width = pixel_values.shape[-2:]
    if height < min_size or width < min_size:
        raise ValueError(
            f"pixel_values is {tuple(pixel_values.shape[-2:])} pixels; the model needs at least {min_size} x {min_size}"
        )


def pad_to_multiple(pixel_values: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad height and width at the bottom/right up to a multiple of ``multiple``.

    Reflection keeps the border statistics of seismic sections (zeros would look like a strong reflector); it needs
    the pad to be smaller than the image, so tiny inputs fall back to edge replication.

    The pad is applied even when it is zero (a copy of the input): a shortcut for sizes that are already multiples
    would be a branch on the input's shape, which ``torch.export`` fixes to the example's case. Inputs of at least
    ``multiple`` pixels per side always take the reflection branch, so exports whose sizes start there have none.
    """
    height, width = pixel_values.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(pixel_values, (0, pad_w, 0, pad_h), mode=mode)


def to_compute_grid(pixel_values: torch.Tensor, scale: float, multiple: int) -> torch.Tensor:
    """The input as the network computes on it: resized by ``scale`` (bilinear; scale 1 keeps it), then padded to a
    multiple of ``multiple`` (see :func:`pad_to_multiple`)."""
    if scale != 1.0:
        height, width = pixel_values.shape[-2:]
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        pixel_values = F.interpolate(pixel_values, size=size, mode="bilinear", align_corners=False)
    return pad_to_multiple(pixel_values, multiple)


def to_input_grid(logits: torch.Tensor, height: int, width: int, scale: float) -> torch.Tensor:
    """Logits computed on :func:`to_compute_grid`'s grid, back on the input's ``height`` x ``width`` pixels."""
    if scale == 1.0:
        return crop_to_size(logits, height, width)
    computed = crop_to_size(logits, max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(computed, size=(height, width), mode="bilinear", align_corners=False)


def crop_to_size(logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left ``height`` x ``width`` of (padded) logits, as a new contiguous tensor.

    A copy rather than the slicing view ``logits[..., :height, :width]``: whether that view is contiguous depends on
    whether the input was padded, and ``torch.export`` would fix that answer to the example input's (an export from
    a padded example then refuses sizes that are already multiples, and the reverse).
    """
    return torch.narrow_copy(torch.narrow_copy(logits, -2, 0, height), -1, 0, width)


def init_conv_weights(module: nn.Module) -> bool:
    """He initialisation of convolutions (the decoders are conv -> BatchNorm -> ReLU stacks: transformers' default
    N(0, 0.02) shrinks activations layer after layer, leaving near-zero logits until BatchNorm statistics adapt).
    Returns whether ``module`` was a convolution or BatchNorm it initialised."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            init.zeros_(module.bias)
        return True
    if isinstance(module, nn.BatchNorm2d):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        return True
    return False


class GeoSegmentationPreTrainedModel(PreTrainedModel):
    """Base of the geofm segmenters: image input, and He initialisation of their convolutions."""

    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def _init_weights(self, module: nn.Module) -> None:
        if not init_conv_weights(module):
            super()._init_weights(module)

    @property
    def is_gradient_checkpointing(self) -> bool:
        # peft still reads transformers' deprecated alias when it wraps a model; answering it here keeps every LoRA
        # run's log free of transformers' FutureWarning, which asks nothing of the user.
        return self.is_activation_checkpointing

    def save_pretrained(self, save_directory: str | os.PathLike, *args, is_main_process: bool = True, **kwargs) -> None:
        """Save as transformers does, plus the model's code, its processor's and its section pipeline's, and the
        ``auto_map`` / ``custom_pipelines`` pointing at them, so that ``AutoModel.from_pretrained(folder,
        trust_remote_code=True)`` and ``pipeline("section-segmentation", ...)`` work where geofm_hf is not
        installed."""
        self.config.auto_map = auto_map(type(self.config), type(self), GeoFMImageProcessor)
        self.config.custom_pipelines = custom_pipelines_entry()
        super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)
        if is_main_process:
            save_model_code(
                save_directory, type(self.config), type(self), GeoFMImageProcessor, SectionSegmentationPipeline
            )


def build_loss(config) -> SegmentationLoss:
    """The loss a config asks for (``loss_weights``, ``class_weights``, ``ignore_index``, ``focal_gamma``)."""
    return SegmentationLoss(config.loss_weights, config.class_weights, config.ignore_index, config.focal_gamma)


def segmentation_output(
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    loss_fn: SegmentationLoss,
    hidden_states: tuple[torch.Tensor, ...] | None = None,
) -> SemanticSegmenterOutput:
    """Wrap logits (and the loss when labels are given) as transformers' ``SemanticSegmenterOutput``."""
    loss = loss_fn(logits, labels) if labels is not None else None
    return SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=hidden_states)

"""Segmentation losses: a registry of terms combined as a weighted sum (``GeoFMConfig.loss_weights``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

LossTerm = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", int, float], torch.Tensor]


def cross_entropy_loss(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None, ignore_index: int, gamma: float
) -> torch.Tensor:
    """Pixel-wise (optionally class-weighted) cross-entropy."""
    return F.cross_entropy(logits, labels, weight=class_weights, ignore_index=ignore_index)


def focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None, ignore_index: int, gamma: float
) -> torch.Tensor:
    """Focal loss ``-alpha_y (1 - p_y)^gamma log p_y`` averaged over the non-ignored pixels."""
    valid = labels != ignore_index
    safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
    log_p = F.log_softmax(logits, dim=1).gather(1, safe_labels.unsqueeze(1)).squeeze(1)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if class_weights is not None:
        loss = loss * class_weights[safe_labels]
    return (loss * valid).sum() / valid.sum().clamp_min(1)


def dice_loss(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None, ignore_index: int, gamma: float
) -> torch.Tensor:
    """One minus the soft Dice of each class over the batch (smoothing 1), averaged over classes (macro).

    Macro averaging keeps thin classes such as faults from being drowned by the background.
    """
    num_labels = logits.shape[1]
    valid = (labels != ignore_index).unsqueeze(1)
    probabilities = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(torch.where(valid.squeeze(1), labels, 0), num_labels).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)
    total = probabilities.sum(dims) + one_hot.sum(dims)
    per_class = 1 - (2 * intersection + 1) / (total + 1)
    weights = class_weights if class_weights is not None else torch.ones_like(per_class)
    return (per_class * weights).sum() / weights.sum()


def jaccard_steps(sorted_foreground: torch.Tensor) -> torch.Tensor:
    """How much one minus a class's IoU grows as each pixel, in the given order, is counted wrong.

    These are the weights of the Lovász extension of the IoU loss: pixels sorted by decreasing error, a pixel's step is
    the change in one minus IoU when it joins the wrong ones.
    """
    total = sorted_foreground.sum()
    intersection = total - sorted_foreground.cumsum(0)
    union = total + (1 - sorted_foreground).cumsum(0)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_loss(
    logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None, ignore_index: int, gamma: float
) -> torch.Tensor:
    """The Lovász-softmax loss (Berman et al., 2018): a convex surrogate of one minus each class's IoU over the batch,
    averaged over the classes present in the labels.

    At one-hot probabilities it is exactly one minus the IoU; it optimises the score the tasks are judged by.
    """
    num_labels = logits.shape[1]
    flat_labels = labels.reshape(-1)
    valid = flat_labels != ignore_index
    probabilities = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_labels)[valid]
    flat_labels = flat_labels[valid]
    present = flat_labels.unique()
    if present.numel() == 0:
        return logits.sum() * 0.0
    per_class = []
    for label in present:
        foreground = (flat_labels == label).float()
        errors, order = (foreground - probabilities[:, label]).abs().sort(descending=True)
        per_class.append(errors @ jaccard_steps(foreground[order]))
    losses = torch.stack(per_class)
    weights = class_weights[present] if class_weights is not None else torch.ones_like(losses)
    return (losses * weights).sum() / weights.sum()


LOSS_TERMS: dict[str, LossTerm] = {
    "cross_entropy": cross_entropy_loss, "dice": dice_loss, "focal": focal_loss, "lovasz": lovasz_loss
}


class SegmentationLoss(nn.Module):
    """Weighted sum of loss terms.

    Args:
        loss_weights: term name -> weight, e.g. ``{"cross_entropy": 1.0, "dice": 1.0}``.
        class_weights: optional per-class weights used by every term.
        ignore_index: label value excluded from the loss.
        focal_gamma: focusing parameter of the focal term.
    """

    def __init__(
        self,
        loss_weights: dict[str, float],
        class_weights: Sequence[float] | None = None,
        ignore_index: int = 255,
        focal_gamma: float = 2.0,
    ):
        super().__init__()
        self.loss_weights = dict(loss_weights)
        self.ignore_index = ignore_index
        self.focal_gamma = focal_gamma
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(
                f"labels must have shape (batch, height, width) = {tuple(logits.shape[:1] + logits.shape[2:])} to match "
                f"the input; got {tuple(labels.shape)}. Labels are never resized: crop or pad them with the image."
            )
        labels = labels.long()
        logits = logits.float()
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        return sum(
            weight * LOSS_TERMS[name](logits, labels, weights, self.ignore_index, self.focal_gamma)
            for name, weight in self.loss_weights.items()
            if weight
        )

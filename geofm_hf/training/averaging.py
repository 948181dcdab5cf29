"""An exponential moving average (EMA) of the trained weights, for validation, ``best/`` and the test.

On small geophysical training sets the validation score of the raw weights swings from one evaluation to the next
(TGS salt at a constant learning rate: 0.80 to 0.89 mIoU 100 steps apart), so the best evaluation is partly luck. The
average over the last ~1/(1 - decay) steps moves slowly and scores what training has learnt, not where the last step
landed. The average is kept beside the model (trainable parameters and floating-point buffers, such as BatchNorm's
running statistics) and swapped in only to validate and to export.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn

# File of a checkpoint holding the average (the other files are Accelerate's).
AVERAGE_FILE = "weight_average.safetensors"


def averaged_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors an average follows: the trainable parameters and the floating-point buffers, by name."""
    tensors = {name: p for name, p in model.named_parameters() if p.requires_grad}
    tensors.update({name: b for name, b in model.named_buffers() if b.is_floating_point()})
    return tensors


class WeightAverage:
    """EMA of ``model``'s trainable parameters and floating buffers, updated after each optimiser step.

    Args:
        model: the unwrapped model being trained (the average starts as a copy of its weights).
        decay: weight of the old average at each update, in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {name: t.detach().clone() for name, t in averaged_tensors(model).items()}
        self._update = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = averaged_tensors(model)
        self._update(list(self.shadow.values()), [current[name].detach() for name in self.shadow], None)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Put the average into ``model`` for the ``with`` block, then restore the trained weights exactly."""
        tensors = averaged_tensors(model)
        trained = {name: tensors[name].detach().clone() for name in self.shadow}
        with torch.no_grad():
            for name, value in self.shadow.items():
                tensors[name].copy_(value)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, value in trained.items():
                    tensors[name].copy_(value)

    def save(self, path: Path) -> None:
        """Write the average as safetensors (into a checkpoint's staging folder, which is renamed when complete)."""
        save_file({name: value.contiguous() for name, value in self.shadow.items()}, str(path))

    def load(self, path: Path) -> None:
        """Restore a saved average.

        Raises:
            ValueError: the file does not hold this model's averaged tensors (names, shapes) or is not finite.
        """
        loaded = load_file(str(path))
        expected = {name: tuple(t.shape) for name, t in self.shadow.items()}
        found = {name: tuple(t.shape) for name, t in loaded.items()}
        if found != expected:
            raise ValueError(
                f"{path}: the weight average does not match this model: expected {len(expected)} tensors named as its "
                f"trainable parameters and floating buffers, found {len(found)} "
                f"(differing: {sorted(set(expected.items()) ^ set(found.items()))[:3]})"
            )
        bad = [name for name, value in loaded.items() if not bool(torch.isfinite(value).all())]
        if bad:
            raise ValueError(f"{path}: the weight average holds NaN or Inf values (in {bad[:3]})")
        for name, value in loaded.items():
            self.shadow[name].copy_(value)


__all__ = ["AVERAGE_FILE", "WeightAverage", "averaged_tensors"]

"""An exponential moving average (EMA) of the trained weights, for validation, ``best/`` and the test.

On small geophysical training sets the validation score of the raw weights swings from one evaluation to the next
(TGS salt, full fine-tuning: 0.80 to 0.89 mIoU 100 steps apart), so the best evaluation is partly luck. The
average over the last ~1/(1 - decay) steps moves slowly and scores what training has learnt, not where the last step
landed. The average is kept beside the model (trainable parameters and floating-point buffers, such as BatchNorm's
running statistics) and swapped in only to validate and to export.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
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

    The average is bias-corrected as Adam's moments are: update n weighs the current weights by
    ``(1 - decay) / (1 - decay**n)``, so the first update takes the weights as they are and the starting weights
    (a randomly initialised decoder, BatchNorm's (0, 1) statistics) carry no weight at all; afterwards it is the
    plain EMA.

    Args:
        model: the unwrapped model being trained (the average starts as a copy of its weights).
        decay: weight of the old average at each update, in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {name: t.detach().clone() for name, t in averaged_tensors(model).items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        step_decay = 1.0 - (1.0 - self.decay) / (1.0 - self.decay**self.updates)
        current = averaged_tensors(model)
        get_ema_multi_avg_fn(step_decay)(list(self.shadow.values()), [current[n].detach() for n in self.shadow], None)

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
        """Write the average and its decay and update count as safetensors (into a checkpoint's staging folder, which
        is renamed when complete)."""
        metadata = {"decay": repr(self.decay), "updates": str(self.updates)}
        save_file({name: value.contiguous() for name, value in self.shadow.items()}, str(path), metadata=metadata)

    def load(self, path: Path) -> None:
        """Restore a saved average.

        Raises:
            ValueError: the file was written with another decay, does not hold this model's averaged tensors (names,
                shapes, dtypes) or is not finite.
        """
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("decay") != repr(self.decay) or not metadata.get("updates", "").isdigit():
            raise ValueError(
                f"{path}: the weight average was kept with ema_decay={metadata.get('decay')}, this run sets "
                f"ema_decay={self.decay}; resume with the interrupted run's setting"
            )
        loaded = load_file(str(path))
        expected = {name: (tuple(t.shape), t.dtype) for name, t in self.shadow.items()}
        found = {name: (tuple(t.shape), t.dtype) for name, t in loaded.items()}
        if found != expected:
            differing = sorted(name for name in set(expected) | set(found) if expected.get(name) != found.get(name))
            raise ValueError(
                f"{path}: the weight average does not match this model: expected {len(expected)} tensors named, shaped "
                f"and typed as its trainable parameters and floating buffers, found {len(found)} "
                f"(differing: {differing[:3]})"
            )
        bad = [name for name, value in loaded.items() if not bool(torch.isfinite(value).all())]
        if bad:
            raise ValueError(f"{path}: the weight average holds NaN or Inf values (in {bad[:3]})")
        for name, value in loaded.items():
            self.shadow[name].copy_(value)
        self.updates = int(metadata["updates"])


__all__ = ["AVERAGE_FILE", "WeightAverage", "averaged_tensors"]

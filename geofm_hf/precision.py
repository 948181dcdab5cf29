"""How models run: numeric precision of training, evaluation and prediction: ``auto``, ``bf16``, ``fp16`` or ``fp32``.

Weights and optimiser state stay float32; ``bf16``/``fp16`` run the model's matrix products under
``torch.autocast``, and outputs (probabilities, SEG-Y, scores) are float32. ``auto`` is bf16 where the hardware
computes it natively — a CUDA GPU with bf16, a CPU with AVX-512 BF16 or AMX — and fp32 elsewhere: on such CPUs a
ViT-S training step runs 1.5-1.8x faster in bf16, on others bf16 is emulated and slower.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# The names accelerate uses for the same settings.
ACCELERATE_NAMES = {"bf16": "bf16", "fp16": "fp16", "fp32": "no"}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware (CUDA with bf16, CPUs with AVX-512 BF16 or AMX tiles)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` made concrete for ``device``: ``auto`` becomes bf16 or fp32.

    Raises:
        ValueError: an unknown name, or fp16 off CUDA (CPU autocast in fp16 is slower and loses range).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision=fp16 needs a CUDA device (this one is {device.type}); use bf16, auto or fp32")
    return precision


def prefer_channels_last(model: torch.nn.Module, precision: str) -> None:
    """In bf16/fp16, keep the decoder's convolutions in channels-last memory format, where oneDNN's reduced-precision
    kernels are fastest (measured here, bf16 training step: DPT 2.05x, MLA 1.10x; `benchmarks/bench_models.py`).
    The numbers stay the same; fp32 and models without a ``decoder`` are left alone."""
    decoder = getattr(model, "decoder", None)
    if precision != "fp32" and isinstance(decoder, torch.nn.Module):
        decoder.to(memory_format=torch.channels_last)


@contextlib.contextmanager
def evaluation_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode for the block (dropout off, BatchNorm statistics fixed), back in its previous mode
    afterwards, however the block ends."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Run the block in ``precision`` (already resolved) on ``device``; fp32 changes nothing."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision]):
        yield


__all__ = [
    "ACCELERATE_NAMES",
    "PRECISIONS",
    "autocast",
    "evaluation_mode",
    "native_bf16",
    "prefer_channels_last",
    "resolve_precision",
]

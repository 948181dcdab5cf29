"""The LoRA adapter folder of a run: peft's files, the base it fits, a fingerprint of that base, and a real card.

A run with ``adaptation: lora`` writes ``base/`` (the model as built before training: pretrained backbone, fresh
decoder) and ``adapter/`` (peft's LoRA matrices plus the trained decoder, ``modules_to_save``).
``adapter_config.json`` names ``base/`` as ``base_model_name_or_path``, so both

    PeftModel.from_pretrained(AutoModelForSemanticSegmentation.from_pretrained("run/base"), "run/adapter")
    AutoPeftModel.from_pretrained("run/adapter")       # the same, base found through adapter_config.json
    geofm_hf.hub.load_adapter("run/adapter")          # the same, after checking the base

give the model of ``best/``. An adapter put on another base would run with wrong outputs: :func:`load_adapter`
refuses it, comparing the base's backbone with the fingerprint recorded at training time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelCardData
from torch import nn

from .constants import BASE_TAGS, CARD_FILE

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_INFO_FILE = "geofm_adapter.json"
BASE_SUBFOLDER = "base"
BASE_AUTO_CLASS = "AutoModelForSemanticSegmentation"
# peft keeps the frozen weight of a wrapped layer as `<layer>.base_layer.weight`, beside its lora_ matrices.
_PEFT_WRAPPER = ".base_layer"
_LORA_MARK = "lora_"


def backbone_fingerprint(model: nn.Module) -> str:
    """sha256 of the backbone's frozen tensors (names and values), the same for a plain model and its peft wrapper."""
    plain = model.get_base_model() if hasattr(model, "get_base_model") else model
    digest = hashlib.sha256()
    tensors = {
        name.replace(_PEFT_WRAPPER, ""): tensor
        for name, tensor in plain.backbone.state_dict().items()
        if _LORA_MARK not in name
    }
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class AdapterInfo:
    """What ``geofm_adapter.json`` records about an adapter's base and purpose."""

    base_fingerprint: str
    backbone: str | None
    task: str | None
    decoder: str | None
    dataset: str | None = None

    @classmethod
    def read(cls, folder: Path) -> "AdapterInfo":
        path = folder / ADAPTER_INFO_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{folder} has no {ADAPTER_INFO_FILE}: it is not an adapter written by geofm_hf, so its base cannot be "
                "checked; load it with peft's PeftModel.from_pretrained(base_model, folder)"
            )
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _adapter_card(info: AdapterInfo, base_hub_id: str | None) -> ModelCard:
    data = ModelCardData(
        library_name="peft",
        base_model=base_hub_id,
        datasets=[info.dataset] if info.dataset and "/" in info.dataset and not os.path.isdir(info.dataset) else None,
        tags=[*BASE_TAGS, "lora", *([info.task] if info.task else [])],
    )
    text = f"""---
{data.to_yaml()}
---

# LoRA adapter for geofm_hf ({info.task or "segmentation"}, {info.decoder or "segmenter"} decoder)

LoRA matrices on the backbone and the trained decoder (`modules_to_save`) of a geofm_hf segmenter.
Backbone: {info.backbone or "see adapter_config.json"}; task: {info.task}; training data: {info.dataset or "not recorded"}.
The merged model is the `best/` folder of the same run (or the repo root when pushed).

## Base

The adapter fits exactly one base: the model as built before training (pretrained backbone, fresh decoder), saved as
`base/` beside this folder and named in `adapter_config.json`. Its backbone fingerprint is recorded in
`{ADAPTER_INFO_FILE}` (sha256 `{info.base_fingerprint[:16]}…`).

## Load

```python
import geofm_hf
model = geofm_hf.hub.load_adapter("path/to/adapter")   # checks the base, refuses another one

# or with peft alone (no check):
from peft import PeftModel
from transformers import AutoModelForSemanticSegmentation
base = AutoModelForSemanticSegmentation.from_pretrained("path/to/base")
model = PeftModel.from_pretrained(base, "path/to/adapter")
```
"""
    return ModelCard(text)


def save_adapter(model: nn.Module, folder: Path, base_dir: Path, info: AdapterInfo, base_hub_id: str | None) -> None:
    """Write ``model``'s peft adapter to ``folder`` naming ``base_dir`` as its base, with the fingerprint and card."""
    model.save_pretrained(folder)
    config_path = folder / ADAPTER_CONFIG_FILE
    adapter_config = json.loads(config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = str(Path(base_dir).resolve())
    # peft's AutoPeftModel builds the base through this class: transformers' Auto class (in peft's import allowlist)
    # finds the geofm classes where geofm_hf is installed, and the base's saved code elsewhere.
    adapter_config["auto_mapping"] = {"base_model_class": BASE_AUTO_CLASS, "parent_library": "transformers"}
    config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True), encoding="utf-8")
    (folder / ADAPTER_INFO_FILE).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
    _adapter_card(info, base_hub_id).save(folder / CARD_FILE)


def _base_folder(adapter: Path) -> Path:
    """The base an adapter names, else the ``base/`` beside it (a run folder that moved)."""
    named = json.loads((adapter / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8")).get("base_model_name_or_path")
    for candidate in (Path(named) if named else None, adapter.parent / BASE_SUBFOLDER):
        if candidate is not None and candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"{adapter}: its base {named!r} is not a folder here, nor is {adapter.parent / BASE_SUBFOLDER}; pass base="
    )


def check_base(adapter: str | os.PathLike, base: nn.Module) -> None:
    """Refuse ``base`` unless its backbone is the one the adapter was trained on.

    Raises:
        ValueError: naming the adapter, both fingerprints and the recorded backbone.
    """
    info = AdapterInfo.read(Path(adapter))
    found = backbone_fingerprint(base)
    if found != info.base_fingerprint:
        raise ValueError(
            f"{adapter}: the base model does not fit this adapter: its backbone fingerprint is {found[:16]}…, the "
            f"adapter was trained on {info.base_fingerprint[:16]}… ({info.backbone}, task {info.task}, decoder "
            f"{info.decoder}). Use the run's base/ folder (adapter_config.json names it), not best/ or another backbone"
        )


def load_adapter(adapter: str | os.PathLike, base: nn.Module | None = None) -> Any:
    """The adapted model (a ``PeftModel``) of a geofm_hf adapter folder, after checking its base.

    Args:
        adapter: the adapter folder (``run/adapter``).
        base: the base model; default: the one the adapter names (``run/base``).

    Raises:
        ValueError: ``base`` is not the model the adapter was trained on.
        FileNotFoundError: the folder is not a geofm_hf adapter, or its base cannot be found.
    """
    from peft import PeftModel
    from transformers import AutoModelForSemanticSegmentation

    adapter = Path(adapter)
    if base is None:
        base = AutoModelForSemanticSegmentation.from_pretrained(_base_folder(adapter))
    check_base(adapter, base)
    return PeftModel.from_pretrained(base, adapter)


__all__ = [
    "ADAPTER_INFO_FILE",
    "BASE_SUBFOLDER",
    "AdapterInfo",
    "backbone_fingerprint",
    "check_base",
    "load_adapter",
    "save_adapter",
]

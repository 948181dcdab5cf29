"""A fully fine-tuned run shipped as a small LoRA adapter: the change of each backbone linear layer, cut to rank r.

Full fine-tuning of DINOv2-S changes 22 M parameters (44 MB in fp16), far beyond what a zoo entry may weigh. The
change ``W_tuned - W_base`` of a linear layer is close to low-rank, and its best rank-r approximation in the
Frobenius norm is the truncated SVD ``U_r S_r V_r^T`` (Eckart-Young): that is a LoRA pair ``B = U_r S_r^(1/2)``,
``A = S_r^(1/2) V_r^T`` with ``alpha = r`` (peft scales by ``alpha / r``). The decoder ships whole, as in a LoRA run.
The rest of the backbone (biases, norms, embeddings) stays the base's: on the TGS validation split keeping the tuned
values instead scored no better (see ``benchmarks/results/salt_ablation.md``), and they would not fit the size.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..hub.adapters import ADAPTER_CONFIG_FILE, ADAPTER_INFO_FILE, AdapterInfo, backbone_fingerprint
from ..training.adaptation import head_modules, resolve_lora_targets

# Where ``ship_run`` keeps the adapter it extracts, inside the run folder.
EXTRACTED_SUBFOLDER = "extracted_adapter"


def low_rank_factors(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, A)`` with ``B @ A`` the best rank-``rank`` approximation of ``delta`` (out x in), in ``delta``'s dtype."""
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    root = s[:rank].sqrt()
    return (u[:, :rank] * root).to(delta.dtype), (root[:, None] * vh[:rank]).to(delta.dtype)


def extract_lora(tuned: nn.Module, base: nn.Module, rank: int) -> nn.Module:
    """A peft LoRA model over a copy of ``base`` whose merged weights approximate ``tuned``.

    Args:
        tuned: the fully fine-tuned segmenter.
        base: the segmenter it was fine-tuned from (same architecture; its backbone weights are the starting point).
        rank: LoRA rank on every linear layer of the backbone.

    Raises:
        ValueError: ``rank`` is not between 1 and the narrowest linear layer's size, or the two models do not have the
            same parameters.
    """
    from peft import LoraConfig, get_peft_model

    tuned_state, base_state = tuned.state_dict(), base.state_dict()
    if tuned_state.keys() != base_state.keys():
        raise ValueError("the fine-tuned model and the base do not have the same parameters (another architecture?)")
    targets = resolve_lora_targets(base, "all-linear")
    narrowest = min(min(base_state[f"{name}.weight"].shape) for name in targets)
    if not 1 <= rank <= narrowest:
        raise ValueError(
            f"LoRA rank must be between 1 and {narrowest} (the backbone's narrowest linear layer), got {rank}"
        )
    start = copy.deepcopy(base)
    # peft copies the modules it saves whole when it wraps: give them the tuned weights first.
    for name in head_modules(start):
        start.get_submodule(name).load_state_dict(tuned.get_submodule(name).state_dict())
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=targets,
        modules_to_save=head_modules(start),
        bias="none",
    )
    model = get_peft_model(start, config)
    for name in targets:
        layer = model.base_model.model.get_submodule(name)
        lora_b, lora_a = low_rank_factors(tuned_state[f"{name}.weight"] - base_state[f"{name}.weight"], rank)
        layer.lora_A["default"].weight.data.copy_(lora_a)
        layer.lora_B["default"].weight.data.copy_(lora_b)
    return model.eval()


def save_extracted_adapter(model: nn.Module, folder: Path, dataset: str) -> Path:
    """Write the extracted adapter as a run writes its LoRA adapter (peft files and the base's fingerprint)."""
    segmenter = model.get_base_model()
    config = segmenter.config
    model.save_pretrained(folder)
    info = AdapterInfo(backbone_fingerprint(model), config.backbone_name, config.task, config.decoder, dataset)
    (folder / ADAPTER_INFO_FILE).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
    adapter_config = json.loads((folder / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = config.backbone_name
    (folder / ADAPTER_CONFIG_FILE).write_text(json.dumps(adapter_config, indent=2, sort_keys=True), encoding="utf-8")
    return folder


__all__ = ["EXTRACTED_SUBFOLDER", "extract_lora", "low_rank_factors", "save_extracted_adapter"]

"""LoRA extracted from a full fine-tuning (geofm_hf.zoo.extract): the truncated SVD, and what the adapter holds."""

import copy

import numpy as np
import pytest
import torch

from geofm_hf.zoo.extract import extract_lora, low_rank_factors, save_extracted_adapter


def test_low_rank_factors_keep_the_largest_singular_directions():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    v, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    singular = np.array([5.0, 3.0, 0.5, 0.1])
    delta = torch.tensor(u[:, :4] @ np.diag(singular) @ v.T)
    lora_b, lora_a = low_rank_factors(delta, 2)
    assert lora_b.shape == (6, 2) and lora_a.shape == (2, 4) and lora_b.dtype == delta.dtype
    expected = u[:, :2] @ np.diag(singular[:2]) @ v[:, :2].T
    np.testing.assert_allclose((lora_b @ lora_a).numpy(), expected, atol=1e-12)
    # Eckart-Young: what is left is the dropped singular values, no more.
    assert float(torch.linalg.norm(delta - lora_b @ lora_a)) == pytest.approx(float(np.hypot(0.5, 0.1)), rel=1e-9)
    lora_b, lora_a = low_rank_factors(delta, 4)
    np.testing.assert_allclose((lora_b @ lora_a).numpy(), delta.numpy(), atol=1e-12)


def fine_tuned(base: torch.nn.Module) -> torch.nn.Module:
    """``base`` with every parameter moved: linear weights, biases, norms, embeddings and the decoder."""
    tuned = copy.deepcopy(base)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return tuned


def linear_weight_names(model: torch.nn.Module) -> set[str]:
    return {
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.startswith("backbone.")
    }


def test_extracted_adapter_at_full_rank_gives_the_tuned_linear_weights_and_decoder(tiny_model):
    base = tiny_model()
    tuned = fine_tuned(base)
    full_rank = base.config.backbone_config.hidden_size  # no wider than any linear layer of the backbone
    merged = extract_lora(tuned, base, full_rank).merge_and_unload()
    tuned_state, base_state, merged_state = tuned.state_dict(), base.state_dict(), merged.state_dict()
    linear = linear_weight_names(base)
    assert linear
    for name, value in merged_state.items():
        if name in linear or not name.startswith("backbone."):
            torch.testing.assert_close(value, tuned_state[name], rtol=0, atol=1e-5)  # linear deltas, and the decoder
        else:
            assert torch.equal(value, base_state[name]), name  # biases, norms, embeddings: the base's
    assert all(torch.equal(value, base_state[name]) for name, value in base.state_dict().items())  # base untouched


def test_a_low_rank_adapter_approximates_the_change_and_saves_like_a_run_adapter(tiny_model, tmp_path):
    base = tiny_model()
    tuned = fine_tuned(base)
    adapter = extract_lora(tuned, base, 2)
    saved = save_extracted_adapter(adapter, tmp_path / "adapter", "data/salt")
    assert sorted(path.name for path in saved.iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "geofm_adapter.json"
    ]
    merged = adapter.merge_and_unload().state_dict()
    name = sorted(linear_weight_names(base))[0]
    delta = tuned.state_dict()[name] - base.state_dict()[name]
    lora_b, lora_a = low_rank_factors(delta, 2)
    torch.testing.assert_close(merged[name], base.state_dict()[name] + lora_b @ lora_a, rtol=0, atol=1e-6)


def test_extraction_refuses_a_bad_rank_and_another_architecture(tiny_model):
    base = tiny_model()
    narrowest = base.config.backbone_config.hidden_size
    for rank in (0, narrowest + 1):
        with pytest.raises(ValueError, match=f"rank must be between 1 and {narrowest} .*got {rank}"):
            extract_lora(base, base, rank)
    with pytest.raises(ValueError, match="same parameters"):
        extract_lora(tiny_model(decoder="pup"), base, 2)

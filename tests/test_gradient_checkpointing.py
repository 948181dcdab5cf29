"""Gradient checkpointing changes memory and time, never the numbers."""

import copy

import pytest
import torch

import geofm_hf
from geofm_hf.training.setup import enable_gradient_checkpointing


def loss_and_gradients(model, pixels, labels):
    model.train()
    loss = model(pixel_values=pixels, labels=labels).loss
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("frozen_backbone", [False, True])
def test_checkpointing_gives_the_same_loss_and_gradients(tiny_model, frozen_backbone):
    plain = tiny_model(decoder="mla", decoder_kwargs={"channels": 8})
    checkpointed = copy.deepcopy(plain)
    enable_gradient_checkpointing(checkpointed)
    for model in (plain, checkpointed):
        model.backbone.requires_grad_(not frozen_backbone)
    pixels, labels = torch.randn(2, 1, 28, 42), torch.randint(0, 2, (2, 28, 42))
    expected_loss, expected = loss_and_gradients(plain, pixels, labels)
    loss, gradients = loss_and_gradients(checkpointed, pixels, labels)
    assert loss == expected_loss and gradients.keys() == expected.keys() and gradients
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected[name], rtol=0, atol=1e-6, msg=name)
    assert checkpointed.is_activation_checkpointing and not plain.is_activation_checkpointing


def test_a_model_without_checkpointing_support_is_refused():
    unet = geofm_hf.build_segmenter("unet", "salt", backbone_overrides={"widths": [4, 8]})
    with pytest.raises(ValueError, match="gradient_checkpointing: GeoUNetForSemanticSegmentation does not support it"):
        enable_gradient_checkpointing(unet)

"""The core model contract: any-size logits, Auto round trips, pretrained backbones, clear config errors."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForSemanticSegmentation, Dinov2Config, Dinov2Model

import geofm_hf
from geofm_hf import GeoFMConfig, GeoFMForSemanticSegmentation, GeoUNetConfig, GeoUNetForSemanticSegmentation

BACKBONE_FAMILIES = ("convnext-tiny", "dinov2-small", "swin-tiny")
ODD_SIZE = (57, 83)


@pytest.mark.parametrize("backbone", BACKBONE_FAMILIES)
@pytest.mark.parametrize("decoder", sorted(geofm_hf.DECODERS))
def test_logits_have_the_input_size_for_every_decoder_and_backbone(decoder, backbone, tiny_config):
    torch.manual_seed(0)
    model = GeoFMForSemanticSegmentation(tiny_config("seismic-facies", decoder, backbone)).eval()
    with torch.no_grad():
        output = model(pixel_values=torch.randn(2, 1, *ODD_SIZE))
    assert output.logits.shape == (2, 6, *ODD_SIZE)
    assert torch.isfinite(output.logits).all()


def test_loss_is_returned_with_labels_and_labels_of_another_size_are_refused(tiny_config):
    model = GeoFMForSemanticSegmentation(tiny_config())
    labels = torch.randint(0, 2, (1, *ODD_SIZE))
    assert model(pixel_values=torch.randn(1, 1, *ODD_SIZE), labels=labels).loss.ndim == 0
    with pytest.raises(ValueError, match="never resized"):
        model(pixel_values=torch.randn(1, 1, *ODD_SIZE), labels=labels[..., :-1])


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ["linear", "mla"])
def test_a_few_optimiser_steps_overfit_a_tiny_batch(decoder, tiny_config):
    torch.manual_seed(0)
    model = GeoFMForSemanticSegmentation(tiny_config("salt", decoder=decoder))
    labels = torch.zeros(2, 42, 56, dtype=torch.long)
    labels[0, 10:30, 14:42] = 1
    labels[1, :, 28:] = 1
    pixel_values = (2.0 * labels - 1.0 + 0.3 * torch.randn(2, 42, 56)).unsqueeze(1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = model(pixel_values=pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("auto_class", [AutoModel, AutoModelForSemanticSegmentation])
def test_save_and_auto_reload_give_identical_logits(tmp_path, auto_class, tiny_config):
    model = GeoFMForSemanticSegmentation(tiny_config(decoder="dpt", backbone="convnext-tiny")).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()
    reloaded = auto_class.from_pretrained(tmp_path).eval()
    assert type(reloaded) is GeoFMForSemanticSegmentation
    pixel_values = torch.randn(1, 1, *ODD_SIZE)
    with torch.no_grad():
        assert torch.equal(model(pixel_values=pixel_values).logits, reloaded(pixel_values=pixel_values).logits)
    assert AutoConfig.from_pretrained(tmp_path).to_diff_dict() == model.config.to_diff_dict()


def test_for_task_fills_classes_and_default_levels():
    config = GeoFMConfig.for_task("fault", backbone="dinov2-small", decoder="mla")
    assert config.num_labels == 2 and config.id2label == {0: "background", 1: "fault"}
    assert config.backbone_config.out_indices == [3, 6, 9, 12]
    assert config.backbone_name == "facebook/dinov2-small"
    assert GeoFMConfig.for_task("facies").num_labels == 6
    assert GeoFMConfig.for_task("salt", backbone="dinov2-large").feature_levels == [6, 12, 18, 24]
    assert GeoFMConfig.for_task("salt", backbone="dinov2-giant").feature_levels == [10, 20, 30, 40]
    assert GeoFMConfig.for_task("fault").loss_weights == {"cross_entropy": 1.0, "dice": 1.0}


def _save_tiny_dinov2(folder, tiny_backbone: dict) -> Dinov2Model:
    torch.manual_seed(1)
    model = Dinov2Model(Dinov2Config(image_size=56, **tiny_backbone))
    model.save_pretrained(folder)
    return model


def test_from_pretrained_backbone_copies_exactly_the_backbone_tensors(tmp_path, tiny_backbone):
    reference = _save_tiny_dinov2(tmp_path, tiny_backbone).state_dict()
    model = GeoFMForSemanticSegmentation.from_pretrained_backbone(str(tmp_path), task="salt", decoder="pup")
    backbone = model.backbone.state_dict()
    assert set(backbone) == set(reference) - {"embeddings.mask_token"}
    assert all(torch.equal(backbone[name], reference[name]) for name in backbone)
    assert model.config.decoder == "pup" and model.config.task == "salt"
    assert model.config.backbone_name == str(tmp_path)


def test_from_pretrained_backbone_refuses_missing_and_mis_shaped_tensors(tmp_path, tiny_backbone):
    _save_tiny_dinov2(tmp_path, tiny_backbone)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = "encoder.layer.1.attention.k_proj.bias"
    weights.pop(next(k for k in weights if k.endswith("layer.1.attention.attention.key.bias") or k == dropped))
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="missing tensors.*layer.1"):
        GeoFMForSemanticSegmentation.from_pretrained_backbone(str(tmp_path), task="salt")
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    with pytest.raises(ValueError, match="mis-shaped"):
        GeoFMForSemanticSegmentation.from_pretrained_backbone(str(tmp_path), task="salt")


def test_from_pretrained_backbone_refuses_an_unsupported_architecture(tmp_path):
    AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert' is not supported"):
        GeoFMForSemanticSegmentation.from_pretrained_backbone(str(tmp_path), task="salt")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(decoder="segformer"), "decoder='segformer' is unknown"),
        (dict(feature_levels=[2, 4, 9]), r"\[9\] beyond the backbone's depth"),
        (dict(in_channels=2), "in_channels=2 cannot be repeated"),
        (dict(loss_weights={"tversky": 1.0}), "unknown terms"),
        (dict(class_weights=[1.0]), "class_weights has 1 entries"),
        (dict(compute_scale=0.0), "compute_scale must be a finite number > 0; got 0.0"),
        (dict(compute_scale=float("nan")), "compute_scale must be a finite number > 0"),
        (dict(refiner_channels=0), r"refiner_channels must be >= 1 \(or None: no refiner\); got 0"),
        (dict(decoder_kwargs={"bogus": 1}), None),
    ],
)
def test_bad_configs_say_what_is_wrong(kwargs, message, tiny_config):
    if message is None:  # decoder settings are checked when the decoder is built
        with pytest.raises(ValueError, match=r"decoder_kwargs has unknown keys \[.bogus.\].*valid keys: upsample"):
            GeoFMForSemanticSegmentation(tiny_config(**kwargs))
        return
    with pytest.raises(ValueError, match=message):
        tiny_config(**kwargs)


def test_unknown_task_and_backbone_preset_are_named():
    with pytest.raises(KeyError, match="Unknown task 'gravity'"):
        GeoFMConfig.for_task("gravity")
    with pytest.raises(ValueError, match=r"backbone='vit-huge' is unknown.*a preset \(dinov2-small"):
        GeoFMConfig.for_task("salt", backbone="vit-huge")


def test_compute_scale_feeds_the_backbone_a_resized_grid_and_returns_input_size_logits(tiny_config):
    torch.manual_seed(0)
    model = GeoFMForSemanticSegmentation(tiny_config("salt", "linear", compute_scale=2.2)).eval()
    seen = []
    model.backbone.register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape[-2:])))
    with torch.no_grad():
        logits = model(pixel_values=torch.randn(2, 1, 101, 57)).logits
    # 101 * 2.2 = 222.2 -> 222, padded to 224; 57 * 2.2 = 125.4 -> 125, padded to 126.
    assert seen == [(224, 126)]
    assert logits.shape == (2, 2, 101, 57) and torch.isfinite(logits).all()


def test_compute_scale_one_leaves_the_model_unchanged(tiny_config):
    torch.manual_seed(0)
    model = GeoFMForSemanticSegmentation(tiny_config("salt", "linear")).eval()
    pixels = torch.randn(1, 1, 30, 44)
    with torch.no_grad():
        before = model(pixel_values=pixels).logits
        model.config.compute_scale = 1.0 + 1e-12
        nearly_one = model(pixel_values=pixels).logits
    assert torch.allclose(before, nearly_one, atol=1e-5)


def test_a_fresh_refiner_leaves_the_logits_unchanged_and_round_trips(tmp_path, tiny_config):
    torch.manual_seed(0)
    plain = GeoFMForSemanticSegmentation(tiny_config("salt", "linear", compute_scale=1.39)).eval()
    torch.manual_seed(0)
    refined = GeoFMForSemanticSegmentation(tiny_config("salt", "linear", compute_scale=1.39, refiner_channels=8)).eval()
    pixel_values = torch.randn(2, 1, 101, 101)
    with torch.no_grad():
        assert torch.equal(plain(pixel_values=pixel_values).logits, refined(pixel_values=pixel_values).logits)
    torch.nn.init.normal_(refined.refiner.correction.weight)
    refined.save_pretrained(tmp_path)
    reloaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        logits = refined(pixel_values=pixel_values).logits
        assert not torch.equal(logits, plain(pixel_values=pixel_values).logits)
        assert torch.equal(logits, reloaded(pixel_values=pixel_values).logits)


@pytest.mark.slow
def test_the_refiner_learns_detail_finer_than_the_token_grid(tiny_config):
    # The label is the sign of each pixel of a noise section: no 14-pixel token can say it, a 3x3 conv stack can.
    torch.manual_seed(0)
    model = GeoFMForSemanticSegmentation(tiny_config("salt", "linear", refiner_channels=8))
    pixel_values = torch.randn(4, 1, 42, 42)
    labels = (pixel_values[:, 0] > 0).long()
    optimizer = torch.optim.AdamW(model.refiner.parameters(), lr=1e-2)
    for _ in range(60):
        loss = model(pixel_values=pixel_values, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model.eval()(pixel_values=pixel_values).logits.argmax(dim=1)
    assert (predicted == labels).float().mean() > 0.95


def test_unet_takes_compute_scale_too():
    torch.manual_seed(0)
    model = GeoUNetForSemanticSegmentation(GeoUNetConfig.for_task("salt", widths=[4, 8], compute_scale=1.5)).eval()
    with torch.no_grad():
        assert model(pixel_values=torch.randn(1, 1, 21, 17)).logits.shape == (1, 2, 21, 17)


def test_input_that_does_not_fit_the_model_is_refused(tiny_config):
    model = GeoFMForSemanticSegmentation(tiny_config())
    with pytest.raises(ValueError, match="3 channels but the model's config.in_channels is 1"):
        model(pixel_values=torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="at least 14 x 14"):
        model(pixel_values=torch.randn(1, 1, 10, 28))


def test_conv_channel_adapter_takes_several_channels_and_starts_as_their_mean(tiny_config):
    model = GeoFMForSemanticSegmentation(tiny_config(in_channels=2, channel_adapter="conv")).eval()
    pixel_values = torch.randn(1, 2, 28, 42)
    adapted = model.channel_adapter(pixel_values)
    assert adapted.shape == (1, 3, 28, 42)
    assert torch.allclose(adapted, pixel_values.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1), atol=1e-6)
    assert model(pixel_values=pixel_values).logits.shape == (1, 2, 28, 42)


def test_unet_baseline_has_the_same_contract_and_auto_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GeoUNetForSemanticSegmentation(GeoUNetConfig.for_task("seismic-facies", widths=[4, 8, 16, 16])).eval()
    pixel_values = torch.randn(2, 1, *ODD_SIZE)
    with torch.no_grad():
        logits = model(pixel_values=pixel_values).logits
    assert logits.shape == (2, 6, *ODD_SIZE)
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is GeoUNetForSemanticSegmentation
    with torch.no_grad():
        assert torch.equal(reloaded(pixel_values=pixel_values).logits, logits)


def test_unet_default_widths_follow_the_study():
    model = GeoUNetForSemanticSegmentation(GeoUNetConfig.for_task("salt"))
    assert [stage[0].out_channels for stage in model.encoder] == [32, 64, 128, 256, 256]
    assert [stage[0].out_channels for stage in model.decoder] == [128, 64, 32, 32]


@pytest.mark.slow
def test_decoder_parameter_counts_follow_the_study_widths():
    """ViT-S, 2 classes. The study's MLA and DPT also counted modules they never called (one MLA ``intmd`` block,
    664,704 parameters; DPT's deepest skip unit, 1,181,184): with those added back the counts equal its 10.97 M and
    13.58 M."""
    counts = {
        name: sum(p.numel() for p in GeoFMForSemanticSegmentation(GeoFMConfig.for_task("fault", decoder=name)).decoder.parameters())
        for name in ("linear", "pup", "mla", "dpt")
    }
    assert counts["linear"] == 384 * 2 + 2
    assert counts["pup"] == 914_882
    assert counts["mla"] + 664_704 == 10_967_810
    assert counts["dpt"] + 1_181_184 == 13_583_586


def test_hidden_states_and_tuple_output(tiny_config, tiny_backbone):
    model = GeoFMForSemanticSegmentation(tiny_config()).eval()
    with torch.no_grad():
        output = model(pixel_values=torch.randn(1, 1, 28, 28), output_hidden_states=True)
        as_tuple = model(pixel_values=torch.randn(1, 1, 28, 28), return_dict=False)
    assert len(output.hidden_states) == tiny_backbone["num_hidden_layers"] + 1
    assert isinstance(as_tuple, tuple) and as_tuple[0].shape == (1, 2, 28, 28)


def test_offline_environment_is_set():
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_build_segmenter_resolves_every_backbone_spelling(tmp_path, tiny_backbone):
    random_model = geofm_hf.build_segmenter("random:dinov2-small", "fault", "pup", backbone_overrides=tiny_backbone)
    assert (random_model.config.backbone_name, random_model.config.decoder) == (None, "pup")
    assert random_model.config.loss_weights == {"cross_entropy": 1.0, "dice": 1.0}
    unet = geofm_hf.build_segmenter("unet", "salt", backbone_overrides={"widths": [4, 8]})
    assert isinstance(unet, GeoUNetForSemanticSegmentation) and unet.config.widths == [4, 8]
    reference = _save_tiny_dinov2(tmp_path, tiny_backbone)
    from_folder = geofm_hf.build_segmenter(str(tmp_path), "fault")
    assert torch.equal(from_folder.backbone.embeddings.patch_embeddings.projection.weight,
                       reference.embeddings.patch_embeddings.projection.weight)
    assert from_folder.config.decoder == geofm_hf.get_task("fault").default_decoder


@pytest.mark.parametrize(
    ("backbone", "settings", "message"),
    [
        ("random:dinov2-small", {"backbone_overrides": {"hidden_size:32": None}},
         r"backbone_overrides has unknown keys \['hidden_size:32'\]; valid keys: .*hidden_size"),
        ("unet", {"backbone_overrides": {"depth": 3}}, r"backbone_overrides has unknown keys \['depth'\]; valid keys: .*widths"),
        ("unet", {"decoder": "mla"}, "has no separate decoder: leave decoder unset"),
        ("unet", {"refiner_channels": 16}, "has no separate decoder: leave refiner_channels unset"),
        ("dinov2-smal", {}, r"backbone='dinov2-smal' is unknown"),
        ("random:dinov2-small", {"decoder": "segformer"}, r"decoder='segformer' is unknown; known decoders: dpt, linear"),
    ],
)
def test_build_segmenter_refuses_what_it_cannot_build(backbone, settings, message):
    with pytest.raises(ValueError, match=message):
        geofm_hf.segmenter_config(backbone, "salt", **settings)

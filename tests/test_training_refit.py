"""A refit (``train_splits: [train, validation]``): the run trains on both splits in order, scores no validation,
keeps its last step as ``best/`` and says so in its results; other choices of splits are refused."""

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from geofm_hf.models.tasks import get_task
from geofm_hf.training import train, validation
from geofm_hf.training.data import DataRequirements, check_label, load_splits
from geofm_hf.training.setup import trained_rows

REFIT = ["train", "validation"]


@pytest.mark.parametrize("splits", [["validation"], ["train", "test"], ["train", "train"], [], ["validation", "train"]])
def test_train_splits_other_than_train_or_train_and_validation_are_refused(splits, tiny_run_config, tmp_path):
    with pytest.raises(ValueError, match=r"train_splits=.*expected \['train'\] or \['train', 'validation'\]"):
        tiny_run_config(tmp_path / "run", train_splits=splits)


def test_trained_rows_are_train_then_validation_in_order(tiny_run_config, tmp_path):
    config = tiny_run_config(tmp_path / "run", train_splits=REFIT)
    splits = load_splits(config.dataset, get_task(config.task))
    rows = trained_rows(splits, config)

    expected = [*splits["train"]["section_index"], *splits["validation"]["section_index"]]
    assert rows["section_index"] == expected and len(expected) == 8  # 6 train + 2 validation of 10 sections
    plain = trained_rows(splits, tiny_run_config(tmp_path / "plain"))
    assert plain["section_index"] == splits["train"]["section_index"]


@pytest.mark.slow
def test_a_refit_scores_no_validation_and_keeps_its_last_step(tiny_run_config, tmp_path, monkeypatch):
    scored = []
    monkeypatch.setattr(validation, "evaluate_loader", lambda *args, **kwargs: scored.append(args))
    result = train(tiny_run_config(tmp_path / "run", adaptation="full", train_splits=REFIT, max_steps=3, eval_steps=1))

    assert scored == [] and not any("validation" in entry for entry in result.state.history)
    assert result.state.best_step == 3 and result.state.best_metric is None
    best = load_file(str(result.layout.best_dir / "model.safetensors"))
    final = result.model.state_dict()
    decoder = [name for name in best if name.startswith("decoder.")]
    assert decoder
    for name in decoder:
        torch.testing.assert_close(best[name], final[name])
    results = result.layout.read_run_results()
    assert results["validation_best"] is None
    hyper = results["hyperparameters"]
    assert hyper["trained_on"] == "train + validation splits (refit); the model is the last step"
    # 8 sections at 2 a step make an epoch of 4 steps (train alone: 3).
    assert hyper["epochs"] == 0.75
    assert "mean_iou" in results["test_results"]
    card = (result.layout.best_dir / "README.md").read_text()
    assert "train + validation splits (refit)" in card


def test_a_refit_holds_validation_sections_to_the_training_crop():
    label = np.zeros((20, 20), dtype=np.uint8)
    refit = DataRequirements(num_labels=2, ignore_index=255, min_size=14, crop_size=24, trained_splits=tuple(REFIT))
    with pytest.raises(ValueError, match=r"row 3: the section is \(20, 20\) pixels, smaller than augmentation.crop_size=24"):
        check_label(label, "validation", "row 3", refit)
    check_label(label, "validation", "row 3", dataclasses.replace(refit, trained_splits=("train",)))

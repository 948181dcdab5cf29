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
@pytest.mark.parametrize("ema_decay", [None, 0.5], ids=["raw", "weight-average"])
def test_a_refit_scores_no_validation_and_keeps_its_last_step(tiny_run_config, tmp_path, monkeypatch, ema_decay):
    scored = []
    monkeypatch.setattr(validation, "evaluate_loader", lambda *args, **kwargs: scored.append(args))
    result = train(
        tiny_run_config(
            tmp_path / "run", adaptation="full", train_splits=REFIT, max_steps=3, eval_steps=1, ema_decay=ema_decay
        )
    )

    assert scored == [] and not any("validation" in entry for entry in result.state.history)
    assert result.state.best_step == 3 and result.state.best_metric is None
    best = load_file(str(result.layout.best_dir / "model.safetensors"))
    final = result.model.state_dict()
    decoder = [name for name in best if name.startswith("decoder.")]
    assert decoder
    same = [torch.equal(best[name], final[name]) for name in decoder]
    # The last step's weights, or with ema_decay their average over the three steps (which differs from them).
    assert all(same) if ema_decay is None else not any(same)
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
    too_small = r"row 3: the section is \(20, 20\) pixels, smaller than augmentation.crop_size=24"
    with pytest.raises(ValueError, match=too_small):
        check_label(label, "validation", "row 3", refit)
    check_label(label, "validation", "row 3", dataclasses.replace(refit, trained_splits=("train",)))


@pytest.mark.slow
def test_a_refit_cut_short_by_its_time_budget_says_so(tiny_run_config, tmp_path, caplog):
    config = tiny_run_config(
        tmp_path / "run", train_splits=REFIT, max_steps=3, max_train_seconds=1e-9, train_time_clock="cpu"
    )
    with caplog.at_level("WARNING"):
        result = train(config)

    assert result.state.global_step == 1 and result.state.best_step == 1
    assert "The time budget ended this refit at step 1 of the 3 its schedule spans" in caplog.text
    hyper = result.layout.read_run_results()["hyperparameters"]
    assert hyper["schedule_cut_by_time_budget"] == "at step 1 of 3"


@pytest.mark.slow
def test_resuming_on_other_train_splits_is_refused(tiny_run_config, tmp_path):
    train(tiny_run_config(tmp_path / "run", train_splits=REFIT, max_steps=2, save_steps=1))
    resumed = tiny_run_config(tmp_path / "run", max_steps=3, save_steps=1, resume_from_checkpoint="latest")
    refused = (
        r"step-2: the interrupted run trained on \['train', 'validation'\], this run sets train_splits=\['train'\]; "
        r"resume with the interrupted run's train_splits"
    )
    with pytest.raises(ValueError, match=refused):
        train(resumed)


@pytest.mark.slow
def test_resuming_a_finished_schedule_trains_no_further_step(tiny_run_config, tmp_path):
    # 6 train sections at 2 a step: the schedule's 2 steps end inside the first epoch, where an extra step would fit.
    common = dict(adaptation="full", max_steps=2, save_steps=1, eval_steps=1)
    first = train(tiny_run_config(tmp_path / "run", **common))
    best_before = (first.layout.best_dir / "model.safetensors").read_bytes()
    again = train(tiny_run_config(tmp_path / "run", resume_from_checkpoint="latest", **common))

    assert again.state.global_step == 2 and again.state.history == first.state.history
    assert (again.layout.best_dir / "model.safetensors").read_bytes() == best_before

"""The weight average (``ema_decay``): the bias-corrected EMA against hand-computed values, an exact swap and
restore, what validation and ``best/`` use, resuming, bad saved averages and bad settings."""

import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from geofm_hf.training import train, validation
from geofm_hf.training.averaging import AVERAGE_FILE, WeightAverage


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    model[0].bias.requires_grad_(False)  # a frozen parameter never changes, so the average leaves it out
    return model


def test_average_is_the_bias_corrected_ema_of_trainable_weights_and_float_buffers():
    model = small_model()
    average = WeightAverage(model, decay=0.75)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(4.0)
    model.train()
    model(torch.randn(5, 3))  # BatchNorm's running statistics move from (0, 1)
    average.update(model)

    assert set(average.shadow) == {"0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    # The first update takes the weights as they are: the starting weights get no share.
    torch.testing.assert_close(average.shadow["0.weight"], start + 4.0)
    torch.testing.assert_close(average.shadow["1.running_var"], model[1].running_var)
    with torch.no_grad():
        model[0].weight.add_(7.0)
    average.update(model)
    # (0.75 * 0.25 * w1 + 0.25 * w2) / (1 - 0.75**2): w1 weighs 3/7, w2 4/7.
    torch.testing.assert_close(average.shadow["0.weight"], start + 4.0 + 4.0)


def test_applied_swaps_the_average_in_and_restores_the_trained_weights_exactly():
    model = small_model()
    average = WeightAverage(model, decay=0.5)
    average.update(model)
    first = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    trained = model[0].weight.detach().clone()
    average.update(model)

    with average.applied(model):
        # (0.5 * 0.5 * w + 0.5 * 3w) / (1 - 0.25) = 7w/3
        torch.testing.assert_close(model[0].weight.detach(), 7.0 * first / 3.0)
    assert torch.equal(model[0].weight.detach(), trained)
    with pytest.raises(RuntimeError, match="inside"), average.applied(model):
        raise RuntimeError("inside")
    assert torch.equal(model[0].weight.detach(), trained)


def test_saved_average_loads_back_and_a_foreign_or_non_finite_one_is_refused(tmp_path):
    model = small_model()
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    average.update(model)
    average.update(model)
    path = tmp_path / "average.safetensors"
    average.save(path)

    restored = WeightAverage(small_model(), decay=0.5)
    restored.load(path)
    assert restored.updates == 2
    assert all(torch.equal(restored.shadow[name], average.shadow[name]) for name in average.shadow)

    with pytest.raises(ValueError, match=r"kept with ema_decay=0\.5, this run sets ema_decay=0\.9"):
        WeightAverage(small_model(), decay=0.9).load(path)
    metadata = {"decay": "0.5", "updates": "2"}
    save_file({**average.shadow, "0.weight": torch.zeros(4, 3)}, str(tmp_path / "foreign.safetensors"), metadata)
    with pytest.raises(ValueError, match=r"foreign\.safetensors: the weight average does not match.*'0\.weight'"):
        restored.load(tmp_path / "foreign.safetensors")
    save_file({**average.shadow, "0.weight": average.shadow["0.weight"].half()}, str(tmp_path / "half.safetensors"),
              metadata)
    with pytest.raises(ValueError, match=r"half\.safetensors: the weight average does not match"):
        restored.load(tmp_path / "half.safetensors")
    poisoned = {**average.shadow, "1.weight": torch.tensor([1.0, float("nan")])}
    save_file(poisoned, str(tmp_path / "nan.safetensors"), metadata)
    with pytest.raises(ValueError, match=r"nan\.safetensors: the weight average holds NaN or Inf values \(in \['1\.w"):
        restored.load(tmp_path / "nan.safetensors")


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1])
def test_ema_decay_outside_the_open_unit_interval_is_refused(decay, tiny_run_config, tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"ema_decay must be in (0, 1) (or unset: no average); got {decay}")):
        tiny_run_config(tmp_path / "run", ema_decay=decay)


def bias_corrected_ema(steps: list[dict[str, torch.Tensor]], name: str, decay: float) -> torch.Tensor:
    """The average after ``steps`` (the weights after each optimiser step), computed the long way."""
    weights = [decay ** (len(steps) - 1 - i) * (1 - decay) for i in range(len(steps))]
    total = sum(w * step[name] for w, step in zip(weights, steps))
    return total / (1 - decay ** len(steps))


@pytest.mark.slow
def test_validation_and_best_use_the_average_of_the_steps_so_far(tmp_path, monkeypatch, tiny_run_config):
    decay = 0.5
    steps: list[dict[str, torch.Tensor]] = []  # the trained weights after each optimiser step
    scored: list[dict[str, torch.Tensor]] = []  # the weights each validation scored
    update, evaluate_loader = WeightAverage.update, validation.evaluate_loader

    def remember_step(self, model):
        update(self, model)
        current = dict(model.named_parameters()) | dict(model.named_buffers())
        steps.append({name: current[name].detach().clone() for name in self.shadow})

    def remember_scored(model, *args, **kwargs):
        plain = model.module if hasattr(model, "module") else model
        scored.append({name: p.detach().clone() for name, p in plain.named_parameters() if name.startswith("decoder.")})
        return evaluate_loader(model, *args, **kwargs)

    monkeypatch.setattr(WeightAverage, "update", remember_step)
    monkeypatch.setattr(validation, "evaluate_loader", remember_scored)
    result = train(tiny_run_config(tmp_path / "run", adaptation="full", ema_decay=decay, max_steps=3, eval_steps=1))

    assert len(steps) == 3 and len(scored) == 3 and result.state.best_step is not None
    decoder = sorted(scored[0])
    assert decoder
    for step in range(1, 4):
        for name in decoder:
            torch.testing.assert_close(scored[step - 1][name], bias_corrected_ema(steps[:step], name, decay))
    best = load_file(str(result.layout.best_dir / "model.safetensors"))
    for name in decoder:
        torch.testing.assert_close(best[name], bias_corrected_ema(steps[: result.state.best_step], name, decay))
    # The trained weights themselves are not what best/ holds.
    assert any(not torch.allclose(best[name], steps[result.state.best_step - 1][name]) for name in decoder)
    assert result.layout.read_run_results()["hyperparameters"]["weight_average"] == "EMA, decay 0.5"


@pytest.mark.slow
def test_resuming_refuses_a_changed_or_dropped_ema_decay(tmp_path, tiny_run_config):
    common = dict(max_steps=2, save_steps=2, eval_steps=2)
    run = train(tiny_run_config(tmp_path / "run", ema_decay=0.5, **common))
    checkpoint = run.layout.checkpoints()[-1]
    assert (checkpoint / AVERAGE_FILE).is_file()
    with pytest.raises(ValueError, match=r"weight_average\.safetensors is unusable .*kept with ema_decay=0\.5, this run"):
        train(tiny_run_config(tmp_path / "run", ema_decay=0.9, resume_from_checkpoint="latest", max_steps=4))
    with pytest.raises(ValueError, match=r"kept a weight average .* this run sets no ema_decay"):
        train(tiny_run_config(tmp_path / "run", resume_from_checkpoint="latest", max_steps=4))

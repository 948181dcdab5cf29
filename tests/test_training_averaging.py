"""The weight average (``ema_decay``): the EMA against hand-computed values, an exact swap and restore, what
validation and ``best/`` use, bad saved averages and bad settings."""

import re

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from geofm_hf.training import train
from geofm_hf.training.averaging import WeightAverage


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    model[0].bias.requires_grad_(False)  # a frozen parameter never changes, so the average leaves it out
    return model


def test_average_is_the_hand_computed_ema_of_trainable_weights_and_float_buffers():
    model = small_model()
    average = WeightAverage(model, decay=0.75)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(4.0)
    model.train()
    model(torch.randn(5, 3))  # BatchNorm's running statistics move from (0, 1)
    average.update(model)

    assert set(average.shadow) == {"0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    torch.testing.assert_close(average.shadow["0.weight"], start + 1.0)  # 0.75 * w + 0.25 * (w + 4)
    torch.testing.assert_close(average.shadow["1.running_mean"], 0.25 * model[1].running_mean)
    torch.testing.assert_close(average.shadow["1.running_var"], 0.75 + 0.25 * model[1].running_var)


def test_applied_swaps_the_average_in_and_restores_the_trained_weights_exactly():
    model = small_model()
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    trained = model[0].weight.detach().clone()
    average.update(model)

    with average.applied(model):
        torch.testing.assert_close(model[0].weight.detach(), 2.0 * trained / 3.0)  # 0.5 * w/3 + 0.5 * w
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
    average.save(tmp_path / "average.safetensors")

    restored = WeightAverage(small_model(), decay=0.5)
    restored.load(tmp_path / "average.safetensors")
    assert all(torch.equal(restored.shadow[name], average.shadow[name]) for name in average.shadow)

    foreign = {**average.shadow, "0.weight": torch.zeros(4, 3)}
    save_file(foreign, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match=r"foreign\.safetensors: the weight average does not match this model"):
        restored.load(tmp_path / "foreign.safetensors")
    poisoned = {**average.shadow, "1.weight": torch.tensor([1.0, float("nan")])}
    save_file(poisoned, str(tmp_path / "nan.safetensors"))
    with pytest.raises(ValueError, match=r"nan\.safetensors: the weight average holds NaN or Inf values \(in \['1\.weight'"):
        restored.load(tmp_path / "nan.safetensors")


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1])
def test_ema_decay_outside_the_open_unit_interval_is_refused(decay, tiny_run_config, tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"ema_decay must be in (0, 1) (or unset: no average); got {decay}")):
        tiny_run_config(tmp_path / "run", ema_decay=decay)


@pytest.mark.slow
def test_validation_and_best_use_the_average_of_the_steps_so_far(tmp_path, monkeypatch, tiny_run_config):
    decay = 0.5
    steps: list[dict[str, torch.Tensor]] = []  # the trained weights before training and after each step
    start = WeightAverage.__init__
    update = WeightAverage.update

    def remember_start(self, model, decay):
        start(self, model, decay)
        steps.append({name: value.clone() for name, value in self.shadow.items()})

    def remember_step(self, model):
        update(self, model)
        current = dict(model.named_parameters()) | dict(model.named_buffers())
        steps.append({name: current[name].detach().clone() for name in self.shadow})

    monkeypatch.setattr(WeightAverage, "__init__", remember_start)
    monkeypatch.setattr(WeightAverage, "update", remember_step)
    result = train(tiny_run_config(tmp_path / "run", adaptation="full", ema_decay=decay, max_steps=3, eval_steps=1))

    assert len(steps) == 4 and result.state.best_step is not None
    best = load_file(str(result.layout.best_dir / "model.safetensors"))
    # The decoder is saved under its own names (transformers may rename backbone tensors on saving).
    decoder = [name for name in steps[0] if name.startswith("decoder.")]
    assert decoder and set(decoder) <= set(best)
    for name in decoder:
        expected = steps[0][name]
        for weights in steps[1 : result.state.best_step + 1]:
            expected = decay * expected + (1 - decay) * weights[name]
        torch.testing.assert_close(best[name], expected, rtol=1e-5, atol=1e-6)
    # The trained weights themselves are not what best/ holds.
    assert any(not torch.allclose(best[name], steps[result.state.best_step][name]) for name in decoder)
    assert result.layout.read_run_results()["hyperparameters"]["weight_average"] == "EMA, decay 0.5"

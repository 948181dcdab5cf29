"""accelerate in charge: its precision setting is honoured when the config leaves it unset; trackers get the logs."""

import pytest
from accelerate.state import AcceleratorState

from geofm_hf.training import RunLayout, train


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one process-wide state: a run in another precision needs it reset, before and after."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.slow
def test_accelerate_environment_sets_the_precision_and_tensorboard_gets_events(
    tmp_path, tiny_run_config, monkeypatch, fresh_accelerate_state
):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    result = train(tiny_run_config(tmp_path / "run", max_steps=2, eval_steps=2, report_to="tensorboard"))
    layout = RunLayout(result.output_dir)
    assert layout.read_run_results()["hyperparameters"]["mixed_precision"] == "bf16"
    events = list(layout.trackers_dir.rglob("events.out.tfevents.*"))
    assert events, sorted(p.name for p in layout.root.rglob("*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"loss", "validation/mean_iou"} <= tags, tags
    assert [event.step for event in accumulator.Scalars("loss")] == [1, 2]


@pytest.mark.slow
def test_a_precision_in_the_config_beats_accelerate_environment(
    tmp_path, tiny_run_config, monkeypatch, fresh_accelerate_state
):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    result = train(tiny_run_config(tmp_path / "run", max_steps=2, eval_steps=2, mixed_precision="no"))
    assert RunLayout(result.output_dir).read_run_results()["hyperparameters"]["mixed_precision"] == "fp32"


def test_an_unknown_precision_is_refused(tmp_path, tiny_run_config):
    with pytest.raises(ValueError, match="mixed_precision='fp8' is unknown"):
        tiny_run_config(tmp_path, mixed_precision="fp8")

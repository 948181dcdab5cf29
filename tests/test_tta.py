"""Test-time flips: the wrapped model averages a section and its mirror, and --tta reaches evaluate and predict."""

import json

import numpy as np
import torch

from geofm_hf.cli.geofm import main as geofm
from geofm_hf.evaluation.tta import FlipAveraged, with_tta


def test_flip_averaged_logits_are_the_mean_of_both_views(tiny_model):
    model = tiny_model()
    pixels = torch.randn(2, 1, 28, 42)
    with torch.no_grad():
        plain = model(pixel_values=pixels).logits
        mirrored = model(pixel_values=pixels.flip(-1)).logits.flip(-1)
        averaged = FlipAveraged(model)(pixel_values=pixels).logits
    torch.testing.assert_close(averaged, (plain + mirrored) / 2)
    assert not torch.allclose(averaged, plain)
    assert with_tta(model, False) is model and with_tta(model, True).config is model.config


def test_tta_flag_in_evaluate_and_predict(tiny_model_dir, dataset_folder, tmp_path, capsys):
    assert geofm(["evaluate", str(tiny_model_dir), str(dataset_folder), "--tta", "--precision", "fp32"]) == 0
    assert "mean IoU" in capsys.readouterr().out
    section = np.random.default_rng(0).standard_normal((40, 56)).astype(np.float32)
    np.save(tmp_path / "section.npy", section)
    outputs = {}
    for flag in ([], ["--tta"]):
        out = tmp_path / f"labels{len(flag)}.npy"
        argv = ["predict", str(tiny_model_dir), str(tmp_path / "section.npy"), str(out), "--precision", "fp32", "--output", "probabilities"]
        assert geofm(argv + flag) == 0
        outputs[bool(flag)] = np.load(out)
        assert json.loads((tmp_path / f"{out.name}.json").read_text())["tta"] is bool(flag)
    assert outputs[True].shape == outputs[False].shape and not np.allclose(outputs[True], outputs[False])

"""`geofm predict` end to end, in-process: SEG-Y in, SEG-Y and overlay PNGs out; a raw 2-D section to .npy."""

import numpy as np
import pytest
import torch
from PIL import Image

import geofm_hf
from geofm_hf.inference import predict_tiled
from geofm_hf.cli import main
from test_inference_io import read_traces, write_segy
from test_inference_tiling import tiny_config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    geofm_hf.GeoFMForSemanticSegmentation(tiny_config()).save_pretrained(folder)
    geofm_hf.GeoFMImageProcessor().save_pretrained(folder)
    return folder


def test_predict_segy_with_pictures(tmp_path, model_dir, capsys):
    cube = np.random.default_rng(0).standard_normal((6, 9, 30)).astype(np.float32)
    source = write_segy(str(tmp_path / "survey.sgy"), cube)
    target = tmp_path / "faults.sgy"
    arguments = ["predict", str(model_dir), source, str(target), "--tile", "28", "--axis", "inline,time"]
    assert main([*arguments, "--class", "fault", "--png", "1,4", "--device", "cpu"]) == 0

    data_in, headers_in, _, text_in = read_traces(source)
    data_out, headers_out, _, text_out = read_traces(str(target))
    assert headers_out == headers_in and text_out == text_in
    assert data_out.shape == data_in.shape and ((data_out > 0) & (data_out < 1)).all()
    for index in (1, 4):
        picture = Image.open(tmp_path / f"faults_inline{index}.png")
        assert picture.format == "PNG" and picture.width > 300 and picture.height > 300

    assert main(arguments) == 2
    assert "faults.sgy already exists" in capsys.readouterr().err
    assert main([*arguments, "--overwrite"]) == 0
    assert set(np.unique(read_traces(str(target))[0])) <= {0.0, 1.0}  # labels by default
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_predict_raw_section_to_npy(tmp_path, model_dir):
    section = np.random.default_rng(1).standard_normal((40, 70)).astype(np.float32)
    section.astype(">f4").tofile(tmp_path / "line.dat")
    arguments = ["predict", str(model_dir), str(tmp_path / "line.dat"), str(tmp_path / "line.npy"), "--shape", "40,70"]
    assert main([*arguments, "--byte-order", "big", "--output", "probabilities", "--tile", "28", "--png", "0"]) == 0
    model = geofm_hf.GeoFMForSemanticSegmentation.from_pretrained(model_dir)
    expected = predict_tiled(model, section, tile=28, processor=geofm_hf.GeoFMImageProcessor(), progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "line.npy"), expected, atol=1e-6)
    assert (tmp_path / "line.png").stat().st_size > 0

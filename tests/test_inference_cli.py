"""`geofm predict` end to end, in-process: SEG-Y in, SEG-Y and overlay PNGs out; a raw 2-D section to .npy."""

import numpy as np
import pytest
import segyio
import torch
from PIL import Image

import geofm_hf
from geofm_hf.cli import main
from geofm_hf.inference import predict_tiled


def tiny_config():
    return geofm_hf.GeoFMConfig.for_task(
        "fault",
        backbone="dinov2-small",
        decoder="linear",
        backbone_overrides=dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2),
    )


def write_segy(path, cube):
    """An inline-sorted SEG-Y of an (inline, crossline, sample) cube, with line numbers and a text header."""
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 1, np.arange(cube.shape[2]) * 4.0, cube.shape[0] * cube.shape[1]
    with segyio.create(path, spec) as f:
        f.text[0] = segyio.tools.create_text_header({1: "GEOFM TEST CUBE"})
        for trace, (i, j) in enumerate(np.ndindex(cube.shape[:2])):
            f.header[trace] = {segyio.TraceField.INLINE_3D: 100 + i, segyio.TraceField.CROSSLINE_3D: 500 + 2 * j}
            f.trace[trace] = cube[i, j]
    return path


def read_traces(path):
    with segyio.open(path, ignore_geometry=True) as f:
        return f.trace.raw[:], [dict(f.header[t]) for t in range(f.tracecount)], dict(f.bin), f.text[0]


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


def test_predict_c_order_raw_section_to_npy(tmp_path, model_dir):
    section = np.random.default_rng(1).standard_normal((40, 70)).astype(np.float32)
    section.astype(">f4").tofile(tmp_path / "line.dat")  # a (time, trace) image written row by row: order C
    arguments = ["predict", str(model_dir), str(tmp_path / "line.dat"), str(tmp_path / "line.npy"), "--shape", "40,70"]
    options = ["--order", "C", "--option", "byte-order=big", "--output", "probabilities", "--tile", "28", "--png", "0"]
    assert main([*arguments, *options]) == 0
    model = geofm_hf.GeoFMForSemanticSegmentation.from_pretrained(model_dir)
    expected = predict_tiled(model, section, tile=28, processor=geofm_hf.GeoFMImageProcessor(), progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "line.npy"), expected, atol=1e-6)
    assert (tmp_path / "line.png").stat().st_size > 0


def test_predict_refuses_options_the_input_does_not_take(tmp_path, model_dir, capsys):
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), np.float32))
    arguments = ["predict", str(model_dir), str(tmp_path / "cube.npy"), str(tmp_path / "out.npy")]
    assert main([*arguments, "--iline-byte", "9"]) == 2
    assert "cube.npy: option(s) iline_byte do not apply to .npy input" in capsys.readouterr().err
    assert main([*arguments, "--byte-order", "big", "--option", "byte_order=little"]) == 2
    assert "byte_order given both as a flag and with --option" in capsys.readouterr().err

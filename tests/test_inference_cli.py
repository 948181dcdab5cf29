"""`geofm predict` end to end, in-process: SEG-Y in, SEG-Y and overlay PNGs out; a raw 2-D section to .npy."""

import json

import numpy as np
from PIL import Image

import geofm_hf
from geofm_hf.cli import main
from geofm_hf.inference import predict_tiled


def test_predict_segy_with_pictures(tmp_path, tiny_model_dir, segy_file, read_segy_traces, capsys):
    target = tmp_path / "faults.sgy"
    arguments = ["predict", str(tiny_model_dir), str(segy_file), str(target), "--tile", "28", "--axis", "inline,time"]
    assert main([*arguments, "--class", "fault", "--png", "1,4", "--device", "cpu"]) == 0

    data_in, headers_in, _, text_in = read_segy_traces(segy_file)
    data_out, headers_out, _, text_out = read_segy_traces(target)
    assert headers_out == headers_in and text_out == text_in
    assert data_out.shape == data_in.shape and ((data_out > 0) & (data_out < 1)).all()
    for index in (1, 4):
        picture = Image.open(tmp_path / f"faults_inline{index}.png")
        assert picture.format == "PNG" and picture.width > 300 and picture.height > 300

    assert main(arguments) == 2
    assert "faults.sgy already exists" in capsys.readouterr().err
    assert main([*arguments, "--overwrite"]) == 0
    assert set(np.unique(read_segy_traces(target)[0])) <= {0.0, 1.0}  # labels by default
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_predict_c_order_raw_section_to_npy(tmp_path, tiny_model_dir):
    section = np.random.default_rng(1).standard_normal((40, 70)).astype(np.float32)
    section.astype(">f4").tofile(tmp_path / "line.dat")  # a (time, trace) image written row by row: order C
    files = [str(tmp_path / "line.dat"), str(tmp_path / "line.npy")]
    arguments = ["predict", str(tiny_model_dir), *files, "--shape", "40,70"]
    options = ["--order", "C", "--option", "byte-order=big", "--output", "probabilities", "--tile", "28", "--png", "0"]
    assert main([*arguments, *options]) == 0
    model = geofm_hf.GeoFMForSemanticSegmentation.from_pretrained(tiny_model_dir)
    expected = predict_tiled(model, section, tile=28, processor=geofm_hf.GeoFMImageProcessor(), progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "line.npy"), expected, atol=1e-6)
    assert (tmp_path / "line.png").stat().st_size > 0


def test_predict_refuses_options_the_input_does_not_take(tmp_path, tiny_model_dir, capsys):
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4), np.float32))
    arguments = ["predict", str(tiny_model_dir), str(tmp_path / "cube.npy"), str(tmp_path / "out.npy")]
    assert main([*arguments, "--iline-byte", "9"]) == 2
    assert "cube.npy: option(s) iline_byte do not apply to .npy input" in capsys.readouterr().err
    assert main([*arguments, "--byte-order", "big", "--option", "byte_order=little"]) == 2
    assert "byte_order given both as a flag and with --option" in capsys.readouterr().err


def test_the_prediction_records_its_settings_and_precision(tmp_path, tiny_model_dir):
    section = np.random.default_rng(4).standard_normal((40, 70)).astype(np.float32)
    np.save(tmp_path / "line.npy", section)
    outputs = {}
    for precision in ("fp32", "bf16"):
        target = tmp_path / f"labels-{precision}.npy"
        arguments = ["predict", str(tiny_model_dir), str(tmp_path / "line.npy"), str(target), "--tile", "28"]
        assert main([*arguments, "--precision", precision, "--output", "probabilities", "--device", "cpu"]) == 0
        record = json.loads((tmp_path / f"{target.name}.json").read_text())
        assert (record["precision"], record["device"], record["tiles"], record["output"]) == (
            precision, "cpu", [[28, 28]], "probabilities"
        )
        outputs[precision] = np.load(target)
    assert outputs["bf16"].dtype == np.float32
    np.testing.assert_allclose(outputs["bf16"], outputs["fp32"], atol=0.05)


def test_a_scratch_folder_left_by_a_killed_prediction_is_removed_by_the_next(tmp_path, tiny_model_dir, segy_file):
    target = tmp_path / "faults.npy"
    orphan = tmp_path / ".faults.npy.tmp-999999-deadbeef"  # what a killed 3-direction prediction leaves
    (orphan / "geofm-predict-x").mkdir(parents=True)
    (orphan / "geofm-predict-x" / "probability_sum.f32").write_bytes(b"\0" * 64)
    arguments = ["predict", str(tiny_model_dir), str(segy_file), str(target), "--tile", "28", "--axis", "all"]
    assert main([*arguments, "--device", "cpu", "--precision", "fp32"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faults.npy", "faults.npy.json"]

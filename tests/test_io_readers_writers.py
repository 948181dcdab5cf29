"""Survey readers and writers: SEG-Y geometry and headers round trip, .npy/.dat streaming, bad input."""

import functools
import os

import numpy as np
import pytest
import segyio
from PIL import Image

from geofm_hf import GeoFMForSemanticSegmentation
from geofm_hf.inference import predict_tiled
from geofm_hf.io import MappedArray, SegyReader, arrays, create_output, map_npy, open_input, section_key
from stand_ins import CoordinateModel, unique_values

INLINES = np.arange(100, 106)
CROSSLINES = np.arange(500, 518, 2)
IBM_FLOAT = 1  # SEG-Y sample format code: the format of most legacy surveys


@pytest.fixture
def write_cube(write_segy):
    """``write_segy`` on this module's grid (inlines 100.., crosslines 500, 502, ...), in IBM floats unless told."""
    return functools.partial(write_segy, inlines=INLINES, crosslines=CROSSLINES, sample_format=IBM_FLOAT)


@pytest.fixture
def cube():
    return unique_values((len(INLINES), len(CROSSLINES), 24))


@pytest.mark.parametrize("axis", ["inline", "crossline", "time"])
def test_segy_round_trip_keeps_headers_and_geometry(tmp_path, cube, axis, write_cube, read_segy_traces):
    source = write_cube(str(tmp_path / "in.sgy"), cube)
    with SegyReader(source) as reader:
        assert reader.shape == cube.shape
        np.testing.assert_array_equal(reader.axis_values(0), INLINES)
        np.testing.assert_array_equal(reader.axis_values(1), CROSSLINES)
        np.testing.assert_array_equal(reader.axis_values(2), np.arange(24) * 4.0)
        with create_output(tmp_path / "out.sgy", cube.shape, np.float32, template=reader) as out:
            predict_tiled(CoordinateModel(), reader, tile=8, axis=axis, output_class=0, out=out, progress=False)
    data_in, headers_in, binary_in, text_in = read_segy_traces(source)
    data_out, headers_out, binary_out, text_out = read_segy_traces(str(tmp_path / "out.sgy"))
    assert binary_in[segyio.BinField.Format] == 1 and binary_out[segyio.BinField.Format] == 5
    assert {k: v for k, v in binary_out.items() if k != segyio.BinField.Format} == {
        k: v for k, v in binary_in.items() if k != segyio.BinField.Format
    }
    assert text_out == text_in and headers_out == headers_in
    np.testing.assert_allclose(data_out, data_in, rtol=1e-5)  # the stand-in model returns its input


def test_segy_labels_output(tmp_path, cube, write_cube, read_segy_traces):
    source = write_cube(str(tmp_path / "in.sgy"), cube)
    with SegyReader(source) as reader:
        with create_output(tmp_path / "labels.sgy", cube.shape, np.uint8, template=reader) as out:
            predict_tiled(CoordinateModel(), reader, tile=8, output="labels", out=out, progress=False)
    data_out = read_segy_traces(str(tmp_path / "labels.sgy"))[0]
    np.testing.assert_array_equal(data_out, (cube < 0.5).reshape(-1, 24).astype(np.float32))


def test_segy_unsorted_with_missing_traces(tmp_path, cube, caplog, write_cube, read_segy_traces):
    grid = [(i, j) for i in range(cube.shape[0]) for j in range(cube.shape[1])]
    missing = [(2, 3), (5, 0)]
    order = [grid[k] for k in np.random.default_rng(0).permutation(len(grid)) if grid[k] not in missing]
    source = write_cube(str(tmp_path / "shuffled.sgy"), cube, order=order)
    with SegyReader(source) as reader:
        assert reader.shape == cube.shape
        assert "2 of 54 (inline, crossline) grid positions have no trace" in caplog.text
        inline = reader.read_section(0, 2)
        np.testing.assert_array_equal(inline[3], 0.0)
        np.testing.assert_array_equal(np.delete(inline, 3, axis=0), np.delete(cube[2], 3, axis=0))
        with create_output(tmp_path / "out.sgy", cube.shape, np.float32, template=reader) as out:
            predict_tiled(CoordinateModel(), reader, tile=8, axis="crossline", output_class=0, out=out, progress=False)
    data_out, headers_out = read_segy_traces(str(tmp_path / "out.sgy"))[:2]
    assert headers_out == read_segy_traces(source)[1]
    np.testing.assert_allclose(data_out, np.stack([cube[i, j] for i, j in order]), rtol=1e-5)


def test_segy_2d_line_without_3d_numbers(tmp_path, cube, write_cube):
    line = cube[0]
    source = write_cube(str(tmp_path / "line.sgy"), line[None], pairs=[(0, 0)] * len(line))
    with SegyReader(source) as reader:
        assert reader.shape == (1, len(line), 24)
        np.testing.assert_array_equal(reader.read_section(0, 0), line)


def test_segy_duplicate_traces_are_refused(tmp_path, cube, write_cube):
    pairs = [(INLINES[i], CROSSLINES[j]) for i in range(6) for j in range(9)]
    pairs[7] = pairs[2]
    source = write_cube(str(tmp_path / "dup.sgy"), cube, pairs=pairs)
    message = r"dup.sgy: 1 traces repeat .* trace 7 \(inline 100, crossline 504\) repeats trace 2"
    with pytest.raises(ValueError, match=message):
        SegyReader(source)


def test_nan_samples_are_refused_naming_where(tmp_path, cube, write_cube):
    cube[3, 4, 17] = np.nan
    source = write_cube(str(tmp_path / "nan.sgy"), cube, sample_format=5)  # IBM floats hold no NaN
    message = r"nan.sgy, inline section 3: 1 NaN or Inf .* trace 31 \(inline 103, crossline 508\), sample 17 \(t = 68\)"
    with SegyReader(source) as reader, pytest.raises(ValueError, match=message):
        predict_tiled(CoordinateModel(), reader, tile=8, progress=False)
    section = unique_values((20, 30))
    section[5, 7] = np.inf
    with pytest.raises(ValueError, match="row 5, column 7"):
        predict_tiled(CoordinateModel(), section, tile=8, progress=False)


def test_model_with_the_wrong_channel_count_is_refused(tmp_path, tiny_config):
    model = GeoFMForSemanticSegmentation(tiny_config(in_channels=3))
    path = tmp_path / "cube.npy"
    np.save(path, unique_values((3, 20, 20)))
    reader = open_input(path)
    with reader, pytest.raises(ValueError, match=r"cube.npy is single-channel .* expects 3 input channels"):
        predict_tiled(model, reader, tile=14, progress=False)


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "out.npy"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="out.npy already exists"):
        create_output(target, (2, 3), np.float32)
    assert target.read_bytes() == b"keep me"
    with create_output(target, (2, 3), np.float32, overwrite=True) as out:
        out[...] = np.ones((2, 3))
    np.testing.assert_array_equal(np.load(target), np.ones((2, 3)))


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), create_output(tmp_path / "out.dat", (4, 5, 6), np.float32) as out:
        out[0] = np.ones((5, 6))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_npy_and_dat_streaming_round_trip(tmp_path):
    volume = unique_values((5, 7, 16))
    np.save(tmp_path / "in.npy", volume)
    volume.astype(">f4").tofile(tmp_path / "in.dat")  # traces contiguous: N1,N2,N3 = 16,7,5 in F order
    for name, options in (("in.npy", {}), ("in.dat", dict(shape=(16, 7, 5), byte_order="big"))):
        with open_input(tmp_path / name, **options) as reader:
            for suffix in (".npy", ".dat"):
                target = tmp_path / f"out-{name}{suffix}"
                with create_output(target, (2, 5, 7, 16), np.float32, template=reader) as out:
                    predict_tiled(CoordinateModel(), reader, tile=8, axis="all", out=out, progress=False)
                stored = np.load(target) if suffix == ".npy" else np.fromfile(target, "<f4").reshape(2, 5, 7, 16)
                np.testing.assert_allclose(stored[0], volume, rtol=1e-5)
                np.testing.assert_allclose(stored.sum(0), 1.0, rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_npy_label_output_keeps_a_small_integer_type(tmp_path):
    with create_output(tmp_path / "labels.npy", (3, 4, 5), np.uint8) as out:
        out[:, 1] = np.full((3, 5), 7)
    stored = np.load(tmp_path / "labels.npy")
    assert stored.dtype == np.uint8 and (stored[:, 1] == 7).all() and (stored[:, 0] == 0).all()


def test_raw_dat_needs_a_shape_that_fits(tmp_path):
    np.zeros(100, np.float32).tofile(tmp_path / "x.dat")
    with pytest.raises(ValueError, match="x.dat: a raw .dat file has no header"):
        open_input(tmp_path / "x.dat")
    with pytest.raises(ValueError, match=r"x.dat: file holds 400 bytes but shape 10,11 of float32 needs 440"):
        open_input(tmp_path / "x.dat", shape=(10, 11))
    section = open_input(tmp_path / "x.dat", shape=(10, 10))
    assert isinstance(section, np.ndarray) and section.shape == (10, 10)


def test_unknown_types_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"x.h5: unknown input type"):
        open_input(tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError, match="nothing.npy"):
        open_input(tmp_path / "nothing.npy")
    with pytest.raises(ValueError, match="SEG-Y output copies the geometry of a SEG-Y input"):
        create_output(tmp_path / "x.sgy", (2, 3, 4), np.float32)


def test_pictures_are_read_as_grey_sections(tmp_path):
    rgb = np.zeros((12, 20, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(tmp_path / "x.png")
    section = open_input(tmp_path / "x.png")
    assert section.shape == (12, 20) and section.dtype == np.float32
    np.testing.assert_allclose(section, round(200 * 0.587))  # ITU-R 601 luma of pure green


def test_mapped_array_reads_fortran_order_npy(tmp_path):
    volume = np.asfortranarray(unique_values((3, 4, 5)))
    np.save(tmp_path / "f.npy", volume)
    mapped = map_npy(tmp_path / "f.npy")
    np.testing.assert_array_equal(mapped[:, 2], volume[:, 2])
    mapped.close()
    created = MappedArray.create(tmp_path / "new.f32", (2, 3), np.float32)
    created[1] = [1, 2, 3]
    created.close()
    np.testing.assert_array_equal(np.fromfile(tmp_path / "new.f32", np.float32), [0, 0, 0, 1, 2, 3])
    assert os.path.getsize(tmp_path / "new.f32") == 24


@pytest.mark.parametrize("shape", [(6, 7, 9), (2, 6, 7, 9)])
def test_mapped_sections_move_in_pieces_yet_exactly(tmp_path, monkeypatch, shape):
    monkeypatch.setattr(arrays, "RELEASE_BYTES", 64)  # far below a section: every read and write is split up
    expected = unique_values(shape)
    mapped = MappedArray.create(tmp_path / "v.f32", shape, np.float32)
    leading = len(shape) - 3
    for axis in range(3):
        for index in range(shape[leading + axis]):
            key = section_key(axis, index, leading)
            mapped[key] = expected[key]
            np.testing.assert_array_equal(mapped[key], expected[key])
    mapped.close()
    np.testing.assert_array_equal(np.fromfile(tmp_path / "v.f32", np.float32).reshape(shape), expected)

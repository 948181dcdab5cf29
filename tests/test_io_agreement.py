"""One survey, three files (raw .dat, .npy, unsorted SEG-Y): dataset conversion and prediction read the same sections.

Each file goes through the readers ``geofm dataset`` uses (the registered sources) and the one ``geofm predict`` uses
(:func:`geofm_hf.io.open_input`), with the same option names, and the ``.dat`` case also through both commands.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import geofm_hf
import geofm_hf.data.sources  # noqa: F401  (registers the readers)
from geofm_hf.cli import main
from geofm_hf.data.records import SOURCES
from geofm_hf.inference import predict_tiled
from geofm_hf.io import SegyReader, VolumeReader, open_input
from geofm_hf.models.tasks import get_task

FAULT = get_task("fault")
INLINES, CROSSLINES, SAMPLES = np.arange(20, 24), np.arange(300, 310, 2), 6


@pytest.fixture
def volume() -> np.ndarray:
    """(inline, crossline, time) values, a different one at every position."""
    shape = (len(INLINES), len(CROSSLINES), SAMPLES)
    return (np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1) / 10


def write_f_order_dat(path: Path, array: np.ndarray, dtype: str = ">f4") -> None:
    """Write ``array`` of shape (N1, N2[, N3]) with N1 varying fastest (Madagascar / Wu et al. layout)."""
    array.ravel(order="F").astype(dtype).tofile(path)


@pytest.fixture
def write_cube(write_segy):
    """``write_segy`` on this module's grid (inlines 20.., crosslines 300, 302, ...)."""
    return functools.partial(write_segy, inlines=INLINES, crosslines=CROSSLINES)


def shuffled_grid(seed: int = 0) -> list[tuple[int, int]]:
    grid = [(i, j) for i in range(len(INLINES)) for j in range(len(CROSSLINES))]
    return [grid[k] for k in np.random.default_rng(seed).permutation(len(grid))]


def converted_sections(source: str, folder: Path, **options) -> dict[tuple[str, int], np.ndarray]:
    """Sections (time, trace) the dataset reader of ``source`` yields, by (axis, index)."""
    sections = SOURCES[source].reader(folder, FAULT, **options)
    return {(s.section_axis, s.section_index): s.image for split in sections.values() for s in split}


def predicted_inputs(path: Path, **options) -> dict[tuple[str, int], np.ndarray]:
    """The same sections as ``geofm predict`` reads them (volume axis order turned to (time, trace))."""
    with open_input(path, **options) as reader:
        assert isinstance(reader, VolumeReader)
        return {
            (name, index): reader.read_section(axis, index).T
            for axis, name in enumerate(("inline", "crossline"))
            for index in range(reader.shape[axis])
        }


def expected_sections(volume: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    inlines = {("inline", i): volume[i].T for i in range(volume.shape[0])}
    return {**inlines, **{("crossline", j): volume[:, j].T for j in range(volume.shape[1])}}


def assert_same_sections(*readings: dict) -> None:
    first, *others = readings
    for other in others:
        assert other.keys() == first.keys()
        for key in first:
            np.testing.assert_array_equal(other[key], first[key], err_msg=str(key))


def test_dat_npy_and_unsorted_segy_read_alike_in_both_paths(tmp_path, volume, write_cube):
    labels = np.zeros(volume.shape, np.uint8)
    write_f_order_dat(tmp_path / "seis.dat", volume.T)  # (N1, N2, N3) = (time, crossline, inline)
    write_f_order_dat(tmp_path / "fault.dat", labels.T, "i1")
    np.save(tmp_path / "train_seismic.npy", volume)
    np.save(tmp_path / "train_labels.npy", labels)
    write_cube(tmp_path / "shuffled.sgy", volume, order=shuffled_grid())
    dat = dict(shape=f"{SAMPLES},{len(CROSSLINES)},{len(INLINES)}", byte_order="big")

    assert_same_sections(
        expected_sections(volume),
        converted_sections("dat", tmp_path, image="seis.dat", label="fault.dat", label_dtype="int8", **dat),
        predicted_inputs(tmp_path / "seis.dat", **dat),
        converted_sections("f3", tmp_path),
        predicted_inputs(tmp_path / "train_seismic.npy"),
        converted_sections("segy", tmp_path, image="shuffled.sgy", label="train_labels.npy"),
        predicted_inputs(tmp_path / "shuffled.sgy"),
    )


def test_f_order_dat_matches_the_documented_formula(tmp_path, volume):
    section = volume[0].T  # (N1 = time, N2 = trace)
    write_f_order_dat(tmp_path / "line.dat", section)
    n1, n2 = section.shape
    np.testing.assert_array_equal(np.fromfile(tmp_path / "line.dat", ">f4").reshape(n2, n1).T, section)
    np.testing.assert_array_equal(open_input(tmp_path / "line.dat", shape=f"{n1},{n2}", byte_order="big"), section)
    np.testing.assert_array_equal(
        open_input(tmp_path / "line.dat", shape=(n2, n1), byte_order="big", order="C"), section.T
    )


def test_little_endian_segy_reads_alike_in_both_paths(tmp_path, volume, write_cube):
    write_cube(tmp_path / "little.sgy", volume, order=shuffled_grid(1), endian="little")
    np.save(tmp_path / "labels.npy", np.zeros(volume.shape, np.uint8))
    with pytest.raises(ValueError, match="little.sgy: cannot read as big-endian SEG-Y.*byte_order="):
        open_input(tmp_path / "little.sgy")
    assert_same_sections(
        expected_sections(volume),
        converted_sections("segy", tmp_path, image="little.sgy", label="labels.npy", byte_order="little"),
        converted_sections("segy", tmp_path, image="little.sgy", label="labels.npy", endian="little"),
        predicted_inputs(tmp_path / "little.sgy", byte_order="little"),
    )


def test_duplicate_traces_are_refused_by_both_paths(tmp_path, volume, write_cube):
    order = shuffled_grid()
    pairs = [(INLINES[i], CROSSLINES[j]) for i, j in order]
    pairs[5] = pairs[1]
    write_cube(tmp_path / "dup.sgy", volume, order=order, pairs=pairs)
    np.save(tmp_path / "labels.npy", np.zeros(volume.shape, np.uint8))
    message = r"dup.sgy: 1 traces repeat .* trace 5 \(inline \d+, crossline \d+\) repeats trace 1.*--iline-byte"
    with pytest.raises(ValueError, match=message):
        open_input(tmp_path / "dup.sgy")
    with pytest.raises(ValueError, match=message):
        SOURCES["segy"].reader(tmp_path, FAULT, image="dup.sgy", label="labels.npy")


def test_missing_traces_are_filled_and_reported_by_both_paths(tmp_path, volume, caplog, write_cube):
    missing = {(1, 2), (3, 0)}
    write_cube(tmp_path / "holes.sgy", volume, order=[p for p in shuffled_grid() if p not in missing])
    np.save(tmp_path / "labels.npy", np.zeros(volume.shape, np.uint8))
    expected = volume.copy()
    for i, j in missing:
        expected[i, j] = 0
    with caplog.at_level(logging.WARNING), SegyReader(tmp_path / "holes.sgy") as reader:
        assert reader.geometry.missing == 2
    assert "holes.sgy: 2 of 20 (inline, crossline) grid positions have no trace" in caplog.text
    assert_same_sections(
        expected_sections(expected),
        converted_sections("segy", tmp_path, image="holes.sgy", label="labels.npy"),
        predicted_inputs(tmp_path / "holes.sgy"),
    )


def test_options_that_do_not_apply_are_refused(tmp_path, volume):
    np.save(tmp_path / "v.npy", volume)
    write_f_order_dat(tmp_path / "v.dat", volume.T, "<f4")
    with pytest.raises(ValueError, match=r"v.npy: option\(s\) shape do not apply to .npy input; its options are: none"):
        open_input(tmp_path / "v.npy", shape="6,5,4")
    with pytest.raises(ValueError, match=r"Option order='X': expected one of f, c"):
        open_input(tmp_path / "v.dat", shape="6,5,4", order="X")
    with pytest.raises(ValueError, match=r"v.dat: file holds 480 bytes but shape 6,5,5 of float32 needs 600"):
        open_input(tmp_path / "v.dat", shape="6,5,5")


# --- the commands ------------------------------------------------------------------------------------------------


def _predicted_directly(model_dir: Path, data: np.ndarray, **settings) -> np.ndarray:
    model = geofm_hf.GeoFMForSemanticSegmentation.from_pretrained(model_dir)
    processor = geofm_hf.GeoFMImageProcessor.from_pretrained(model_dir)
    return predict_tiled(model, data, processor=processor, progress=False, device="cpu", **settings)


def test_the_same_dat_flags_work_in_dataset_and_predict(tmp_path, volume, tiny_model_dir):
    write_f_order_dat(tmp_path / "seis.dat", volume.T)
    # A fault in every other sample: a dataset without a single fault pixel is refused.
    write_f_order_dat(tmp_path / "fault.dat", (np.arange(volume.size).reshape(volume.shape) % 2).astype(np.float32).T)
    layout = ["--shape", f"{SAMPLES},{len(CROSSLINES)},{len(INLINES)}", "--order", "F", "--byte-order", "big"]

    dataset = ["dataset", "--task", "fault", "--source", "dat", "--input", str(tmp_path), "--output"]
    files = ["--option", "image=seis.dat", "--option", "label=fault.dat"]
    assert main([*dataset, str(tmp_path / "out"), *layout, *files]) == 0
    table = pq.read_table(sorted((tmp_path / "out" / "data").glob("*.parquet"))).to_pylist()
    converted = {(row["section_axis"], row["section_index"]): np.array(row["image"], np.float32) for row in table}
    assert_same_sections(expected_sections(volume), converted)

    target = tmp_path / "faults.npy"
    arguments = [str(tiny_model_dir), str(tmp_path / "seis.dat"), str(target), "--tile", "14", "--device", "cpu"]
    assert main(["predict", *arguments, *layout, "--output", "probabilities", "--class", "fault"]) == 0
    expected = _predicted_directly(tiny_model_dir, volume, tile=14, output_class="fault")
    np.testing.assert_allclose(np.load(target), expected, atol=1e-6)


def test_2d_f_order_dat_is_predicted_correctly(tmp_path, tiny_model_dir):
    section = np.random.default_rng(1).standard_normal((30, 44)).astype(np.float32)  # (time, trace)
    write_f_order_dat(tmp_path / "line.dat", section)
    target = tmp_path / "line.dat.out.dat"
    arguments = ["predict", str(tiny_model_dir), str(tmp_path / "line.dat"), str(target), "--tile", "28"]
    options = ["--shape", "30,44", "--byte-order", "big", "--output", "probabilities", "--class", "fault"]
    assert main([*arguments, *options, "--device", "cpu"]) == 0
    expected = _predicted_directly(tiny_model_dir, section, tile=28, output_class="fault")
    # The .dat output keeps the input's convention: little-endian float32, time fastest (order F).
    stored = open_input(target, shape="30,44")
    np.testing.assert_allclose(stored, expected, atol=1e-6)
    np.testing.assert_allclose(np.fromfile(target, "<f4").reshape(44, 30).T, expected, atol=1e-6)

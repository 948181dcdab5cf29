"""Readers of the original source formats, on tiny files written here in each format."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin, TiffTags

import geofm_hf.data.sources  # noqa: F401  (registers the readers)
from geofm_hf.data.builder import read_source
from geofm_hf.data.records import SOURCES, get_source
from geofm_hf.io import SegyReader
from geofm_hf.io.options import as_ints, as_label_map
from geofm_hf.data.sources.crater import ellipse_mask
from geofm_hf.data.sources.tgs import rle_decode
from geofm_hf.models.tasks import get_task

FACIES, SALT, CRATER, DAS, FAULT = (get_task(n) for n in ("seismic-facies", "salt", "crater", "das-event", "fault"))


def read(source: str, folder: Path, task, **options) -> dict[str, list]:
    return {split: list(sections) for split, sections in SOURCES[source].reader(folder, task, **options).items()}


def save_png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)


# --- registry and options ----------------------------------------------------------------------------------------


def test_every_source_is_registered_for_its_tasks():
    expected = {
        "tgs": {"salt"},
        "segy": {"seismic-facies", "fault"},
        "f3": {"seismic-facies"},
        "png": {"seismic-facies", "salt", "crater", "fault"},
        "boxes": {"crater"},
        "dem": {"crater"},
        "npz": {"das-event"},
        "dat": {"fault"},
    }
    for name, tasks in expected.items():
        assert tasks <= set(SOURCES[name].tasks), name
    with pytest.raises(ValueError, match="cannot feed task 'fault'.*segy"):
        get_source("tgs", FAULT)


def test_option_parsers_convert_strings_and_name_bad_values():
    assert as_ints("patch", "256", (2,)) == (256, 256)
    assert as_ints("shape", "3,4,5", (2, 3)) == (3, 4, 5)
    assert as_label_map("label_map", "0:0, 6:5,7:5") == {0: 0, 6: 5, 7: 5}
    with pytest.raises(ValueError, match=r"Option shape='3,x'"):
        as_ints("shape", "3,x", (2, 3))
    with pytest.raises(ValueError, match="Option label_map"):
        as_label_map("label_map", "0-1")


@pytest.mark.parametrize("source, task, options", [
    ("tgs", SALT, {}),
    ("png", FACIES, {}),
    ("boxes", CRATER, {}),
    ("f3", FACIES, {}),
    ("dem", CRATER, {}),
    ("npz", DAS, {"events": "1"}),
    ("segy", FAULT, {"label": "labels.npy"}),
    ("dat", FAULT, {"image": "seis.dat", "label": "fault.dat", "shape": "2,2"}),
])
def test_empty_folder_is_an_error(tmp_path, source, task, options):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        read(source, tmp_path, task, **options)


# --- tgs ---------------------------------------------------------------------------------------------------------


def test_rle_decode_is_column_major_and_one_indexed():
    # Pixels 2, 3 and 7 counted down the columns of a 3x3 image.
    expected = np.array([[0, 0, 1], [1, 0, 0], [1, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(rle_decode("2 2 7 1", (3, 3), "t"), expected)
    assert rle_decode("", (3, 3), "t").sum() == 0
    with pytest.raises(ValueError, match="outside a 3x3"):
        rle_decode("8 3", (3, 3), "train.csv id a")
    with pytest.raises(ValueError, match="pairs of integers"):
        rle_decode("1 2 3", (3, 3), "t")


def write_tgs(root: Path, with_masks: bool = True) -> dict[str, np.ndarray]:
    masks = {"aa": np.zeros((5, 5), np.uint8), "bb": np.zeros((5, 5), np.uint8)}
    masks["bb"][1:3, 0] = 1  # pixels 2 and 3 down the first column
    for i, key in enumerate(masks):
        grey = np.full((5, 5), 10 * (i + 1), np.uint8)
        save_png(root / "train" / "images" / f"{key}.png", np.stack([grey] * 3, -1))
        if with_masks:  # one 8-bit mask, one 16-bit mask with 65535 for salt, as Kaggle ships them
            mask = masks[key] * 255 if key == "aa" else (masks[key].astype(np.uint16) * 65535)
            save_png(root / "train" / "masks" / f"{key}.png", mask)
    (root / "train.csv").write_text("id,rle_mask\naa,\nbb,2 2\n")
    (root / "depths.csv").write_text("id,z\naa,100\nbb,250\n")
    return masks


@pytest.mark.parametrize("masks", ["png", "rle"])
def test_tgs_reads_images_masks_and_depths(tmp_path, masks):
    expected = write_tgs(tmp_path, with_masks=masks == "png")
    sections = read("tgs", tmp_path, SALT)["train"]
    assert [s.source_file for s in sections] == ["train/images/aa.png", "train/images/bb.png"]
    assert [s.depth for s in sections] == [100.0, 250.0]
    assert sections[1].image.dtype == np.float32 and sections[1].image[0, 0] == 20.0
    for section, key in zip(sections, ("aa", "bb")):
        np.testing.assert_array_equal(section.label, expected[key])


def test_tgs_orphans_are_errors(tmp_path):
    write_tgs(tmp_path)
    (tmp_path / "train" / "images" / "aa.png").unlink()
    with pytest.raises(ValueError, match=r"label\(s\) without an image.*'aa'"):
        read("tgs", tmp_path, SALT)
    with pytest.raises(ValueError, match=r"image\(s\) without a label.*train.csv"):
        (tmp_path / "train.csv").write_text("id,rle_mask\naa,\n")
        read("tgs", tmp_path, SALT, masks="rle")


# --- png pairs ---------------------------------------------------------------------------------------------------


def test_png_pairs_read_splits_map_labels_and_cut_patches(tmp_path):
    ids = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint8).repeat(2, axis=0)
    for split in ("train", "valid"):
        save_png(tmp_path / split / "images" / "s1.png", np.arange(16, dtype=np.uint8).reshape(4, 4))
        save_png(tmp_path / split / "masks" / "s1.png", ids)
    with pytest.raises(ValueError, match=r"s1.png: label ids \[6, 7\] outside 0..5.*label_map"):
        read("png", tmp_path, FACIES, labels="masks")
    out = read("png", tmp_path, FACIES, labels="masks", label_map="0:0,1:1,2:2,3:3,4:4,5:5,6:5,7:5")
    assert set(out) == {"train", "validation"}
    section = out["validation"][0]
    assert section.source_file == "valid/images/s1.png" and section.image.shape == (4, 4)
    np.testing.assert_array_equal(section.label, np.minimum(ids, 5))
    patches = read("png", tmp_path, FACIES, labels="masks", label_map={i: min(i, 5) for i in range(8)},
                   patch="2,3", stride="2,1")["train"]
    assert len(patches) == 2 * 2 and all(p.image.shape == (2, 3) for p in patches)
    np.testing.assert_array_equal(patches[3].image, np.arange(16).reshape(4, 4)[2:4, 1:4])


def test_png_pairs_reject_colour_labels_orphans_and_shape_mismatch(tmp_path):
    save_png(tmp_path / "images" / "a.png", np.zeros((4, 4), np.uint8))
    save_png(tmp_path / "labels" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="a.png: label image mode RGB"):
        read("png", tmp_path, SALT)
    save_png(tmp_path / "labels" / "a.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"Label .*a.png has shape \(4, 5\).*\(4, 4\)"):
        read("png", tmp_path, SALT)
    save_png(tmp_path / "images" / "b.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"without a label.*b.png"):
        read("png", tmp_path, SALT)


# --- segy --------------------------------------------------------------------------------------------------------


@pytest.fixture
def write_cube(write_segy):
    """``write_segy`` on this module's grid for ``cube``: inlines 100, 101, 102 and crosslines 7..10."""
    return functools.partial(write_segy, inlines=range(100, 103), crosslines=range(7, 11))


def crossline_sorted(cube: np.ndarray) -> list[tuple[int, int]]:
    """Grid positions crossline by crossline: the trace order of a crossline-sorted file."""
    return [(i, j) for j in range(cube.shape[1]) for i in range(cube.shape[0])]


@pytest.fixture
def cube() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)


@pytest.mark.parametrize("inline_sorted", [True, False])
def test_segy_sections_match_the_cube_along_both_axes(tmp_path, cube, inline_sorted, write_cube):
    write_cube(tmp_path / "seis.sgy", cube, order=None if inline_sorted else crossline_sorted(cube))
    labels = (np.arange(cube.size).reshape(cube.shape) % 6).astype(np.uint8)
    np.save(tmp_path / "facies.npy", labels)
    sections = read("segy", tmp_path, FACIES, label="facies.npy")["train"]
    assert [(s.section_axis, s.section_index) for s in sections] == [("inline", i) for i in range(3)] + [
        ("crossline", j) for j in range(4)
    ]
    assert sections[0].source_file == "seis.sgy"
    np.testing.assert_array_equal(sections[1].image, cube[1].T)  # (sample, crossline)
    np.testing.assert_array_equal(sections[1].label, labels[1].T)
    np.testing.assert_array_equal(sections[5].image, cube[:, 2].T)  # (sample, inline)
    only = read("segy", tmp_path, FACIES, label="facies.npy", axis="crossline", step=2, patch="4,2", stride="2,1")
    assert [s.section_index for s in only["train"]] == [0] * 4 + [2] * 4
    np.testing.assert_array_equal(only["train"][5].image, cube[1:3, 2, 0:4].T)


def test_segy_streams_one_section_at_a_time(tmp_path, cube, monkeypatch, write_cube):
    write_cube(tmp_path / "seis.sgy", cube)
    write_cube(tmp_path / "fault.sgy", (cube > 0.5).astype(np.float32) * 0.9)
    reads = []
    original = SegyReader.read_section

    def counting_section(self, axis, index):
        reads.append(Path(self.name).name)
        return original(self, axis, index)

    monkeypatch.setattr(SegyReader, "read_section", counting_section)
    sections = SOURCES["segy"].reader(tmp_path, FAULT, image="seis.sgy", label="fault.sgy", threshold="0.5")["train"]
    assert reads == []  # nothing read before iteration
    first = next(sections)
    assert sorted(reads) == ["fault.sgy", "seis.sgy"]  # one seismic section, one label section
    np.testing.assert_array_equal(first.label, (cube[0] > 0.5).T.astype(np.uint8))
    next(sections)
    assert len(reads) == 4


def test_segy_without_line_numbers_is_refused_naming_the_header_bytes(tmp_path, cube, write_cube):
    same_numbers = [(100, 7)] * (cube.shape[0] * cube.shape[1])  # every trace says inline 100, crossline 7
    write_cube(tmp_path / "seis.sgy", cube, pairs=same_numbers)
    np.save(tmp_path / "labels.npy", np.zeros(cube.shape, np.uint8))
    with pytest.raises(ValueError, match=r"Label .*labels.npy has shape \(3, 4, 6\) but its image .*seis.sgy has "
                                         r"\(1, 12, 6\)"):
        read("segy", tmp_path, FACIES, label="labels.npy")
    write_cube(tmp_path / "seis.sgy", cube)
    with pytest.raises(ValueError, match=r"seis.sgy: 8 traces repeat .*--iline-byte"):
        read("segy", tmp_path, FACIES, label="labels.npy", iline_byte=9)  # field record numbers: all 0 here
    options = dict(label="labels.npy", ignore_geometry="true", shape="3,4")  # no longer needed: headers say it all
    with pytest.raises(ValueError, match=r"Source 'segy' does not take option\(s\) ignore_geometry, shape"):
        read_source("segy", FACIES, tmp_path, options)


def test_segy_labels_on_another_grid_are_refused(tmp_path, cube, write_cube):
    write_cube(tmp_path / "seis.sgy", cube)
    write_cube(tmp_path / "labels.sgy", np.zeros_like(cube), inlines=range(200, 203))
    with pytest.raises(ValueError, match=r"labels.sgy: its inline numbers differ from those of .*seis.sgy"):
        read("segy", tmp_path, FACIES, image="seis.sgy", label="labels.sgy")


def test_segy_bad_inputs_name_the_file(tmp_path, cube, write_cube):
    (tmp_path / "broken.sgy").write_bytes(b"not a segy file" * 300)
    np.save(tmp_path / "labels.npy", np.zeros(cube.shape, np.uint8))
    with pytest.raises(ValueError, match="broken.sgy: cannot read as big-endian SEG-Y"):
        read("segy", tmp_path, FACIES, label="labels.npy")
    (tmp_path / "broken.sgy").unlink()
    cube[2, 1, 3] = np.nan
    write_cube(tmp_path / "seis.sgy", cube)
    with pytest.raises(ValueError, match=r"seis.sgy, inline section 2: 1 NaN or Inf .* trace 9 \(inline 102, "
                                         r"crossline 8\), sample 3"):
        read("segy", tmp_path, FACIES, label="labels.npy", axis="inline")
    np.save(tmp_path / "labels.npy", np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"labels.npy has shape \(3, 4, 5\).*seis.sgy has \(3, 4, 6\)"):
        read("segy", tmp_path, FACIES, label="labels.npy")
    np.save(tmp_path / "labels.npy", np.full(cube.shape, 0.3, np.float32))
    with pytest.raises(ValueError, match="labels.npy.*not integer class ids.*threshold"):
        read("segy", tmp_path, FAULT, label="labels.npy", axis="crossline")
    with pytest.raises(ValueError, match=r"Option xline_byte='x': expected an integer"):
        read("segy", tmp_path, FAULT, label="labels.npy", xline_byte="x")
    with pytest.raises(ValueError, match=r"seis.sgy: iline_byte=2 is not the first byte of a trace-header field"):
        read("segy", tmp_path, FAULT, label="labels.npy", iline_byte=2)


def test_segy_dat_labels_are_the_grid_with_samples_fastest(tmp_path, cube, write_cube):
    write_cube(tmp_path / "seis.sgy", cube, order=crossline_sorted(cube))
    labels = (np.arange(cube.size).reshape(cube.shape) % 6).astype(np.float32)
    labels.tofile(tmp_path / "facies.dat")  # (inline, crossline, sample), C order: N1,N2,N3 = 6,4,3 in F order
    sections = read("segy", tmp_path, FACIES, image="seis.sgy", label="facies.dat", axis="crossline")["train"]
    np.testing.assert_array_equal(sections[1].image, cube[:, 1].T)
    np.testing.assert_array_equal(sections[1].label, labels[:, 1].T)


# --- f3 npy ------------------------------------------------------------------------------------------------------


def test_f3_volumes_give_train_and_test_sections_with_depth_first(tmp_path, cube):
    labels = (np.arange(cube.size).reshape(cube.shape) % 6).astype(np.uint8)
    (tmp_path / "train").mkdir()
    (tmp_path / "test_once").mkdir()
    for folder, name in (("train", "train"), ("test_once", "test1"), ("test_once", "test2")):
        np.save(tmp_path / folder / f"{name}_seismic.npy", cube)
        np.save(tmp_path / folder / f"{name}_labels.npy", labels)
    out = read("f3", tmp_path, FACIES, step=2)
    assert len(out["train"]) == 2 + 2 and len(out["test"]) == 2 * (2 + 2)
    section = out["train"][2]
    assert (section.section_axis, section.section_index, section.source_file) == ("crossline", 0,
                                                                                   "train/train_seismic.npy")
    np.testing.assert_array_equal(section.image, cube[:, 0].T)
    np.testing.assert_array_equal(section.label, labels[:, 0].T)


def test_f3_rejects_bad_labels_and_orphans(tmp_path, cube):
    np.save(tmp_path / "train_seismic.npy", cube)
    np.save(tmp_path / "train_labels.npy", np.full(cube.shape, 6, np.uint8))
    with pytest.raises(ValueError, match=r"train_labels.npy \(inline 0\): label ids \[6\] outside 0..5"):
        read("f3", tmp_path, FACIES)
    np.save(tmp_path / "test1_labels.npy", np.zeros(cube.shape, np.uint8))
    with pytest.raises(ValueError, match="test1_labels.npy has no seismic volume"):
        read("f3", tmp_path, FACIES)
    (tmp_path / "test1_labels.npy").unlink()
    np.save(tmp_path / "train_labels.npy", np.array([None, 1], dtype=object).reshape(1, 1, 2), allow_pickle=True)
    with pytest.raises(ValueError, match="train_labels.npy: cannot read as a numeric .npy"):
        read("f3", tmp_path, FACIES)


# --- dat ---------------------------------------------------------------------------------------------------------


def test_dat_reads_big_endian_fortran_sections_with_threshold(tmp_path):
    n1, n2 = 5, 3
    image = np.arange(n1 * n2, dtype=np.float32).reshape(n1, n2)
    likelihood = np.where(image > 7, 0.8, 0.1).astype(np.float32)
    # Written like the OSV files: n1 fastest, big-endian float32 (np.fromfile(f, ">f4").reshape(n2, n1).T).
    image.T.astype(">f4").tofile(tmp_path / "seis.dat")
    likelihood.T.astype(">f4").tofile(tmp_path / "fault.dat")
    (section,) = read("dat", tmp_path, FAULT, image="seis.dat", label="fault.dat", shape="5,3", byte_order="big",
                      threshold=0.5)["train"]
    np.testing.assert_array_equal(section.image, image)
    np.testing.assert_array_equal(section.label, (image > 7).astype(np.uint8))
    assert (section.source_file, section.section_index, section.section_axis) == ("seis.dat", -1, "")


def test_dat_volumes_and_folders(tmp_path):
    volume = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)  # (n1, n2, n3)
    labels = (volume % 2).astype(np.int8)
    for name in ("a", "b"):
        (tmp_path / "input").mkdir(exist_ok=True)
        (tmp_path / "target").mkdir(exist_ok=True)
        volume.tofile(tmp_path / "input" / f"{name}.dat")  # C order
        labels.tofile(tmp_path / "target" / f"{name}.dat")
    sections = read("dat", tmp_path, FAULT, image="input", label="target", shape="4,3,2", order="C",
                    label_dtype="int8")["train"]
    assert [(s.source_file, s.section_axis, s.section_index) for s in sections[:5]] == [
        ("input/a.dat", "inline", 0), ("input/a.dat", "inline", 1),
        ("input/a.dat", "crossline", 0), ("input/a.dat", "crossline", 1), ("input/a.dat", "crossline", 2),
    ]
    assert len(sections) == 10
    np.testing.assert_array_equal(sections[1].image, volume[:, :, 1])  # n1 x n2
    np.testing.assert_array_equal(sections[3].image, volume[:, 1, :])  # n1 x n3
    np.testing.assert_array_equal(sections[3].label, labels[:, 1, :])


def test_dat_size_mismatch_names_file_and_bytes(tmp_path):
    np.zeros(10, np.float32).tofile(tmp_path / "seis.dat")
    np.zeros(10, np.float32).tofile(tmp_path / "fault.dat")
    with pytest.raises(ValueError, match=r"seis.dat: file holds 40 bytes but shape 3,4 of float32 needs 48"):
        read("dat", tmp_path, FAULT, image="seis.dat", label="fault.dat", shape="3,4")
    with pytest.raises(ValueError, match="needs shape="):
        read("dat", tmp_path, FAULT, image="seis.dat", label="fault.dat")


# --- crater boxes ------------------------------------------------------------------------------------------------


def test_ellipse_inscribed_in_box_matches_hand_computed_mask():
    expected = np.zeros((6, 6), np.uint8)
    expected[0, 1:4] = expected[4, 1:4] = 1  # circle of radius 2.5 centred at (2.5, 2.5), pixel centres at +0.5
    expected[1:4, 0:5] = 1
    np.testing.assert_array_equal(ellipse_mask((6, 6), np.array([[0.0, 0.0, 5.0, 5.0]])), expected)
    wide = ellipse_mask((3, 8), np.array([[0.0, 0.0, 8.0, 2.0]]))  # 8 wide, 2 high: two rows of 6 pixels
    np.testing.assert_array_equal(wide.sum(axis=1), [6, 6, 0])


def test_boxes_rasterise_each_image_with_or_without_header(tmp_path):
    folder = tmp_path / "train"
    for name in ("a", "b"):
        save_png(folder / f"{name}.png", np.full((6, 6), 50, np.uint8))
    (folder / "a.txt").write_text("ID,X,Y,W,H,C_X,CY\n0,0,0,5,5,3,3\n")
    (folder / "b.txt").write_text("7,0,0,5,5,3,3\r\n")
    sections = read("boxes", tmp_path, CRATER)["train"]
    assert [s.source_file for s in sections] == ["train/a.png", "train/b.png"]
    assert sections[0].label.sum() == sections[1].label.sum() == 21
    (folder / "b.txt").write_text("7,0,0,0,5,3,3\n")
    with pytest.raises(ValueError, match="b.txt: box with width or height <= 0"):
        read("boxes", tmp_path, CRATER)
    (folder / "c.txt").write_text("")
    with pytest.raises(ValueError, match=r"label\(s\) without an image.*'c'"):
        read("boxes", tmp_path, CRATER)


# --- crater DEM --------------------------------------------------------------------------------------------------

MOON_KM = 1737.4


def write_geotiff(path: Path, raw: np.ndarray, degrees: float = 22.5) -> None:
    """A global int16 LZW GeoTIFF like the LOLA products: scale 0.5, nodata -32768, lon -180..180."""
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, kind, value in (
        (339, TiffTags.SHORT, 2),  # signed integers
        (33550, TiffTags.DOUBLE, (degrees, degrees, 0.0)),
        (33922, TiffTags.DOUBLE, (0.0, 0.0, 0.0, -180.0, 90.0, 0.0)),
        (34735, TiffTags.SHORT, (1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2057, 34736, 1, 0)),
        (34736, TiffTags.DOUBLE, (MOON_KM * 1000,)),
        (42112, TiffTags.ASCII, '<GDALMetadata><Item name="SCALE" sample="0" role="scale">0.5</Item></GDALMetadata>'),
        (42113, TiffTags.ASCII, "-32768"),
    ):
        tags[tag] = value
        tags.tagtype[tag] = kind
    Image.fromarray(raw.astype(np.int16).view(np.uint16)).save(path, tiffinfo=tags, compression="tiff_lzw")


def diameter_km(angle_degrees: float) -> float:
    return 2 * MOON_KM * np.radians(angle_degrees)


def test_dem_craters_are_spherical_discs_cut_into_tiles(tmp_path):
    raw = np.full((8, 16), 200, np.int16)  # 22.5 degree pixels: centres at lat 78.75, 56.25, ...; lon -168.75, ...
    raw[0, 12] = -32768
    write_geotiff(tmp_path / "moon.tif", raw)
    rows = [
        "Lon,Lat,Diam_km",
        f"0,0,{diameter_km(30)}",  # reaches the 4 pixels at lat, lon = +-11.25 (15.9 deg), not those at 33.75
        f"0,56.25,{diameter_km(20)}",  # one row, but 4 pixels wide: 1/cos(lat) in longitude
        f"180,0,{diameter_km(20)}",  # across the date line
        f"0,80,{diameter_km(15)}",  # around the pole: row 0 (lat 78.75) within 90 deg of longitude 0
    ]
    (tmp_path / "craters.csv").write_text("\r".join(rows) + "\r")  # old-Mac line ends
    out = read("dem", tmp_path, CRATER, tile=8)["train"]
    assert len(out) == 1  # the right-hand tile holds a nodata pixel
    (tile,) = out
    assert tile.source_file == "moon.tif" and tile.image.shape == (8, 8)
    np.testing.assert_array_equal(tile.image, np.full((8, 8), 100.0))  # 200 x scale 0.5
    expected = np.zeros((8, 8), np.uint8)
    expected[3:5, 7] = 1  # crater at (0, 0): columns 7 and 8; only 7 is in the left tile
    expected[1, 6:8] = 1  # high-latitude crater: columns 6..9
    expected[3:5, 0] = 1  # date-line crater: columns 0 and 15
    expected[0, 4:8] = 1  # polar crater: columns 4..11
    np.testing.assert_array_equal(tile.label, expected)


def test_dem_hillshade_and_catalogue_errors(tmp_path):
    write_geotiff(tmp_path / "moon.tif", np.zeros((8, 16), np.int16))
    (tmp_path / "craters.csv").write_text("Longitude,Latitude,Size\n0,0,10\n")
    with pytest.raises(ValueError, match=r"craters.csv: no column 'diam_km'.*diameter_column=COLUMN"):
        read("dem", tmp_path, CRATER, tile=8)
    (tile, _) = read("dem", tmp_path, CRATER, tile=8, diameter_column="Size", layer="hillshade")["train"]
    np.testing.assert_allclose(tile.image, np.sin(np.radians(45.0)), rtol=1e-6)  # flat ground, sun 45 deg up
    (tmp_path / "other.csv").write_text("Lon,Lat,Diam_km\n")
    with pytest.raises(ValueError, match="holds 2 crater catalogues.*catalogue=FILE"):
        read("dem", tmp_path, CRATER)


# --- DAS ---------------------------------------------------------------------------------------------------------


def test_das_event_windows_and_picks_label_time_by_channel_patches(tmp_path):
    data = np.random.default_rng(1).standard_normal((6, 40)).astype(np.float32)  # channel x time, 10 Hz
    np.savez(tmp_path / "rec.npz", data=data, fs_hz=np.float32(10.0))
    sections = read("npz", tmp_path, DAS, events="1.0", window=0.5, patch="20,6")["train"]
    assert [(s.section_axis, s.section_index) for s in sections] == [("time", 0), ("time", 20)]
    np.testing.assert_array_equal(sections[1].image, data[:, 20:40].T)  # (time, channel)
    expected = np.zeros((20, 6), np.uint8)
    expected[10:15] = 1  # samples at 1.0 .. 1.4 s
    np.testing.assert_array_equal(sections[0].label, expected)
    assert sections[1].label.sum() == 0
    (tmp_path / "picks.csv").write_text("channel,time,record\n2,3.0,rec\n4,0.5,other\n")
    picked = read("npz", tmp_path, DAS, picks="picks.csv", window=0.35, pre=0.15, patch="20,3")["train"]
    assert sum(p.label.sum() for p in picked) == 5  # the pick of another record is not applied
    late = picked[2]  # samples 20..39, channels 0..2: the pick covers 2.85 .. 3.35 s on channel 2
    assert late.label[:, 2].nonzero()[0].tolist() == [9, 10, 11, 12, 13] and late.label[:, :2].sum() == 0


def test_das_bad_inputs_name_the_record(tmp_path):
    np.savez(tmp_path / "rec.npz", data=np.zeros((6, 40), np.float32))
    with pytest.raises(ValueError, match="events=T1,T2"):
        read("npz", tmp_path, DAS)
    with pytest.raises(ValueError, match="rec.npz: no sampling rate"):
        read("npz", tmp_path, DAS, events="1")
    with pytest.raises(ValueError, match=r"rec.npz: an event window lies outside the record's 0..4 s"):
        read("npz", tmp_path, DAS, events="9", fs=10, patch="20,6")
    with pytest.raises(ValueError, match=r"rec.npz: no array 'strain'"):
        read("npz", tmp_path, DAS, events="1", fs=10, key="strain")
    with pytest.raises(ValueError, match="rec.npz: section of 40x6 is smaller than patch 512x512"):
        read("npz", tmp_path, DAS, events="1", fs=10)


def test_das_hdf5_record_is_sliced_in_time_channel_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    data = np.arange(30 * 4, dtype=np.float32).reshape(30, 4)  # time x channel
    with h5py.File(tmp_path / "rec.h5", "w") as handle:
        handle.create_dataset("das/strain", data=data).attrs["fs"] = 10.0
    sections = read("npz", tmp_path, DAS, key="das/strain", layout="time_channel", events="0.5", window=1,
                    patch="15,4")["train"]
    np.testing.assert_array_equal(sections[1].image, data[15:30])
    assert sections[0].label[:, 0].nonzero()[0].tolist() == list(range(5, 15))

"""Reader of the study's release layout: happy paths on files written here, and every bad-input error."""

from pathlib import Path

import numpy as np
import pytest

from geofm_hf.data.builder import build_dataset_dict
from geofm_hf.data.study import read_study
from geofm_hf.models.tasks import TASKS
from geofm_hf.study import study_task

SHAPE = (6, 5)


def write_release(root: Path, task_name: str, counts=None, shape=SHAPE, seed=0) -> dict:
    """Write ``root/data/<folder>/{train,valid}/{image,label}/N.dat`` as the study does; return the arrays."""
    task = TASKS[task_name]
    layout = study_task(task.name).layout
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in (counts or {"train": 3, "valid": 2}).items():
        for kind in (layout.image_dir, layout.label_dir):
            (root / "data" / layout.folder / split / kind).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image = rng.standard_normal(shape).astype(np.float32)
            label = rng.integers(0, task.num_labels, shape).astype(np.int8)
            image.tofile(root / "data" / layout.folder / split / layout.image_dir / f"{index}.dat")
            label.tofile(root / "data" / layout.folder / split / layout.label_dir / f"{index}.dat")
            written[split, index] = image, label
    return written


def _file(root: Path, task_name: str, split: str, kind: str, index: int) -> Path:
    layout = study_task(task_name).layout
    folder = layout.image_dir if kind == "image" else layout.label_dir
    return root / "data" / layout.folder / split / folder / f"{index}.dat"


def _read_all(root: Path, task_name: str, **options) -> dict:
    return {split: list(sections) for split, sections in read_study(root, TASKS[task_name], **options).items()}


def test_reads_train_and_valid_as_test(tmp_path):
    written = write_release(tmp_path, "fault")
    splits = _read_all(tmp_path, "fault", shape="6,5")
    assert {split: len(sections) for split, sections in splits.items()} == {"train": 3, "test": 2}
    for split, study_split in (("train", "train"), ("test", "valid")):
        for index, section in enumerate(splits[split]):
            image, label = written[study_split, index]
            assert section.image.dtype == np.float32 and section.label.dtype == np.uint8
            assert section.image.tobytes() == image.tobytes()
            np.testing.assert_array_equal(section.label, label)
            assert section.source_file == f"data/deepFault/{study_split}/image/{index}.dat"
            assert section.section_index == -1 and section.section_axis == "" and section.depth is None


def test_files_are_read_in_number_order(tmp_path):
    write_release(tmp_path, "das-event", counts={"train": 12, "valid": 1})
    names = [Path(s.source_file).name for s in _read_all(tmp_path, "das-event", shape=SHAPE)["train"]]
    assert names == [f"{i}.dat" for i in range(12)]


@pytest.mark.parametrize("where", ["root", "data", "task"])
def test_input_may_be_root_data_or_task_folder(tmp_path, where):
    write_release(tmp_path, "crater")
    folder = {"root": tmp_path, "data": tmp_path / "data", "task": tmp_path / "data" / "crater"}[where]
    splits = _read_all(folder, "crater", shape=SHAPE)
    assert len(splits["train"]) == 3 and len(splits["test"]) == 2


def test_native_size_is_the_default_shape(tmp_path):
    written = write_release(tmp_path, "salt", counts={"train": 1, "valid": 1}, shape=(224, 224))
    splits = _read_all(tmp_path, "salt")
    assert splits["train"][0].image.shape == (224, 224)
    assert splits["test"][0].image.tobytes() == written["valid", 0][0].tobytes()
    assert splits["train"][0].source_file == "data/geobody/train/input/0.dat"


def test_validation_is_carved_from_the_end_of_train(tmp_path):
    write_release(tmp_path, "fault", counts={"train": 20, "valid": 4})
    task = TASKS["fault"]
    dataset = build_dataset_dict(read_study(tmp_path, task, shape=SHAPE), task, cache_dir=tmp_path / "c")
    assert {split: dataset[split].num_rows for split in dataset} == {"train": 18, "validation": 2, "test": 4}
    assert dataset["validation"]["source_file"] == [f"data/deepFault/train/image/{i}.dat" for i in (18, 19)]
    assert dataset["test"]["source_file"] == [f"data/deepFault/valid/image/{i}.dat" for i in range(4)]


def test_wrong_byte_count_names_file_bytes_and_shape(tmp_path):
    write_release(tmp_path, "fault")
    bad = _file(tmp_path, "fault", "valid", "image", 1)
    np.zeros(29, dtype=np.float32).tofile(bad)
    with pytest.raises(ValueError) as error:
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)
    message = str(error.value)
    assert str(bad) in message and "116 bytes" in message and "expected 120 bytes" in message and "6x5" in message


def test_default_shape_mismatch_suggests_the_shape_option(tmp_path):
    write_release(tmp_path, "salt", counts={"train": 1, "valid": 1})
    with pytest.raises(ValueError, match=r"expected 200704 bytes for a 224x224 float32 array.*shape=N1,N2"):
        read_study(tmp_path, TASKS["salt"])


def test_label_byte_count_is_checked_too(tmp_path):
    write_release(tmp_path, "fault")
    bad = _file(tmp_path, "fault", "train", "label", 2)
    np.zeros(31, dtype=np.int8).tofile(bad)
    with pytest.raises(ValueError, match=rf"{bad}: 31 bytes, expected 30 bytes"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)


@pytest.mark.parametrize("value", [2, -1])
def test_label_outside_classes_names_file(tmp_path, value):
    write_release(tmp_path, "fault")
    bad = _file(tmp_path, "fault", "train", "label", 1)
    label = np.zeros(SHAPE, dtype=np.int8)
    label[3, 2] = value
    label.tofile(bad)
    splits = read_study(tmp_path, TASKS["fault"], shape=SHAPE)
    with pytest.raises(ValueError, match=rf"{bad}.*\[{value}\] outside 0..1"):
        list(splits["train"])


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_image_names_file(tmp_path, value):
    write_release(tmp_path, "fault")
    bad = _file(tmp_path, "fault", "valid", "image", 0)
    image = np.ones(SHAPE, dtype=np.float32)
    image[0, 0] = value
    image.tofile(bad)
    with pytest.raises(ValueError, match=rf"{bad}: 1 NaN or Inf"):
        list(read_study(tmp_path, TASKS["fault"], shape=SHAPE)["test"])


def test_image_without_label_names_file(tmp_path):
    write_release(tmp_path, "fault")
    orphan = _file(tmp_path, "fault", "train", "image", 3)
    np.zeros(SHAPE, dtype=np.float32).tofile(orphan)
    with pytest.raises(ValueError, match=rf"image\(s\) without a label.*{orphan}"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)


def test_label_without_image_names_file(tmp_path):
    write_release(tmp_path, "fault")
    orphan = _file(tmp_path, "fault", "valid", "label", 7)
    np.zeros(SHAPE, dtype=np.int8).tofile(orphan)
    with pytest.raises(ValueError, match=rf"label\(s\) without an image.*7\.dat.*{orphan.parent}"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)


def test_empty_folder_is_an_error(tmp_path):
    write_release(tmp_path, "fault")
    folder = _file(tmp_path, "fault", "valid", "image", 0).parent
    for path in folder.iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"No fault images \(\*\.dat\) in {folder}"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)


def test_missing_label_folder_is_an_error(tmp_path):
    write_release(tmp_path, "fault")
    folder = _file(tmp_path, "fault", "train", "label", 0).parent
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    with pytest.raises(FileNotFoundError, match=rf"{folder} does not exist"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)


def test_missing_split_or_input_folder_is_an_error(tmp_path):
    write_release(tmp_path, "fault", counts={"train": 2})
    with pytest.raises(FileNotFoundError, match=r"No study layout for task 'fault'.*data/deepFault/\{train,valid\}"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_study(tmp_path / "nowhere", TASKS["fault"])
    with pytest.raises(ValueError, match="needs --input"):
        read_study(None, TASKS["fault"])


def test_file_not_named_by_number_is_an_error(tmp_path):
    write_release(tmp_path, "fault")
    stray = _file(tmp_path, "fault", "train", "image", 0).with_name("notes.dat")
    stray.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{stray}: files of the study's release are named N.dat"):
        read_study(tmp_path, TASKS["fault"], shape=SHAPE)

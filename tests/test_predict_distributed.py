"""Survey prediction split across processes: shares, their assembly, and a real 2-process CPU run under accelerate."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import geofm_hf
from geofm_hf.cli import main
from geofm_hf.inference import ArrayReader, plan_prediction, predict_with_plan
from geofm_hf.inference.distributed import ProcessGroup, assemble_shares, predict_share, section_share
from geofm_hf.io.volumes import STATS_MAX_SECTIONS
from hub_server import free_port


@pytest.mark.parametrize(("count", "tiles", "batch_size", "processes"), [(40, 3, 8, 2), (7, 2, 8, 3), (5, 4, 4, 8)])
def test_shares_cover_every_section_once_and_start_where_a_batch_starts(count, tiles, batch_size, processes):
    shares = [section_share(count, tiles, batch_size, index, processes) for index in range(processes)]
    assert [section for share in shares for section in share] == list(range(count))
    for share in shares[1:]:
        if share:
            assert share.start * tiles % batch_size == 0
    # As even as whole batches allow: 40 sections of 3 tiles, batches of 8: units of 8 sections, 5 units over 2.
    if (count, tiles, batch_size, processes) == (40, 3, 8, 2):
        assert shares == [range(0, 16), range(16, 40)]


@pytest.mark.parametrize(
    ("axis", "output", "output_class", "precision", "process_counts"),
    [
        ("inline,crossline,time", "probabilities", None, "fp32", (2, 3)),  # averaged, every class kept
        ("crossline", "labels", None, "bf16", (2,)),
        ("time,inline", "probabilities", "fault", "bf16", (3,)),
    ],
)
def test_shares_assemble_into_the_one_process_result(
    tmp_path, tiny_model, axis, output, output_class, precision, process_counts
):
    model, processor = tiny_model(), geofm_hf.GeoFMImageProcessor()
    reader = ArrayReader(np.random.default_rng(3).standard_normal((7, 16, 40)).astype(np.float32))
    # Batches of 3 tiles straddle sections: shares must start where a one-process batch starts.
    plan = plan_prediction(
        model.config, reader, tile=28, batch_size=3, output=output, output_class=output_class, axis=axis,
        precision=precision,
    )
    stats = processor.amplitude_stats(reader.stats_sample())
    expected = predict_with_plan(model, reader, plan, processor=processor, stats=stats, progress=False)
    for processes in process_counts:
        scratch = tmp_path / f"scratch{processes}"
        scratch.mkdir()
        settings = dict(processor=processor, stats=stats, progress=False)
        for index in range(processes):
            predict_share(model, reader, plan, scratch, index, processes, **settings)
        out = np.empty(plan.output_shape, plan.output_dtype)
        assemble_shares(plan, scratch, processes, out)
        # The same batches reach the model, so even bf16 gives the same values.
        np.testing.assert_array_equal(out, expected)


def test_a_group_of_one_runs_each_step_and_raises_its_error():
    group = ProcessGroup()
    assert (group.index, group.count, group.is_main) == (0, 1, True)
    assert group.together(lambda: 42) == 42 and group.share("x") == "x"
    with pytest.raises(ValueError, match="bad input"):
        group.together(lambda: (_ for _ in ()).throw(ValueError("bad input")))


# Runs each job (module, arguments) as `python -m module` would, in one launch: the process group is started once.
# Each process writes its exit codes to its own file: two processes printing to one pipe can interleave their lines.
DRIVER = """
import json, os, runpy, sys
codes = []
for module, arguments in json.loads(sys.argv[1]):
    sys.argv = [module, *arguments]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as ended:
        codes.append(ended.code)
with open(os.path.join(os.path.dirname(__file__), f"codes{os.environ['RANK']}.json"), "w") as file:
    json.dump(codes, file)
"""


def launch_two_cpu_processes(tmp_path, jobs: list[tuple[str, list[str]]]) -> tuple[list[list[int]], str]:
    """Run ``jobs`` on two CPU processes (gloo) under ``accelerate launch``; each process's exit codes, and the log."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    # Without GPUs, Accelerate makes a gloo (MULTI_CPU) group only when told to use the CPU.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
        "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        str(driver), json.dumps(jobs),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    log = completed.stdout + completed.stderr
    assert completed.returncode == 0, log[-4000:]
    codes = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("codes*.json"))]
    return codes, log


def one_process(tiny_model_dir, source, target, *options) -> None:
    assert main(["predict", str(tiny_model_dir), str(source), str(target), *options, "--device", "cpu"]) == 0


@pytest.mark.slow
def test_two_cpu_processes_predict_what_one_predicts(
    tmp_path, tiny_model_dir, segy_file, small_volume, read_segy_traces, capsys
):
    np.save(tmp_path / "volume.npy", small_volume)
    # A NaN in an inline that only process 1 reads: not among the sections the amplitude statistics are taken from.
    tall = np.random.default_rng(5).standard_normal((40, 16, 28)).astype(np.float32)
    sampled = set(np.linspace(0, 39, min(STATS_MAX_SECTIONS, 40)).round().astype(int))
    broken_inline = max(set(range(40)) - sampled)
    tall[broken_inline, 3, 7] = np.nan
    np.save(tmp_path / "broken.npy", tall)
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir(), one.mkdir()
    segy_options = ["--tile", "28", "--axis", "inline,crossline,time", "--class", "fault", "--precision", "fp32"]
    npy_options = ["--tile", "28", "--axis", "crossline", "--precision", "fp32"]
    dat_options = ["--tile", "28", "--axis", "time,inline", "--output", "probabilities", "--precision", "fp32"]
    model, npy = str(tiny_model_dir), str(tmp_path / "volume.npy")
    jobs = [
        ("geofm_hf.predict", [model, str(segy_file), str(two / "faults.sgy"), *segy_options]),
        ("geofm_hf_cli", ["predict", model, npy, str(two / "labels.npy"), *npy_options]),  # `geofm predict`
        ("geofm_hf.predict", [model, npy, str(two / "probabilities.dat"), *dat_options]),
        ("geofm_hf.predict", [model, str(tmp_path / "broken.npy"), str(two / "broken.npy"), "--tile", "28"]),
        ("geofm_hf.predict", [model, str(tmp_path / "missing.npy"), str(two / "missing.npy")]),
    ]
    codes, log = launch_two_cpu_processes(tmp_path, jobs)
    assert sorted(codes) == [[0, 0, 0, 2, 2]] * 2, log[-4000:]

    one_process(tiny_model_dir, segy_file, one / "faults.sgy", *segy_options)
    one_process(tiny_model_dir, npy, one / "labels.npy", *npy_options)
    one_process(tiny_model_dir, npy, one / "probabilities.dat", *dat_options)
    data_two, headers_two, binary_two, text_two = read_segy_traces(two / "faults.sgy")
    data_one, headers_one, binary_one, text_one = read_segy_traces(one / "faults.sgy")
    assert (headers_two, binary_two, text_two) == (headers_one, binary_one, text_one)
    assert headers_two == read_segy_traces(segy_file)[1]
    np.testing.assert_allclose(data_two, data_one, atol=1e-6)
    np.testing.assert_array_equal(np.load(two / "labels.npy"), np.load(one / "labels.npy"))
    np.testing.assert_allclose(
        np.fromfile(two / "probabilities.dat", "<f4"), np.fromfile(one / "probabilities.dat", "<f4"), atol=1e-6
    )
    assert json.loads((two / "faults.sgy.json").read_text())["processes"] == 2

    # Each failure is one line from one process, with no traceback from either; nothing is left behind.
    errors = [line for line in log.splitlines() if line.startswith("geofm predict: error:")]
    assert errors == [
        f"geofm predict: error: {tmp_path / 'broken.npy'}, inline section {broken_inline}: 1 NaN or Inf value(s); "
        f"the first (nan) is at index [{broken_inline}, 3, 7] (inline, crossline, time). Fill or mask them first",
        f"geofm predict: error: {tmp_path / 'missing.npy'}: no such file",
    ], log[-4000:]
    assert "Traceback" not in log
    assert sorted(path.name for path in two.iterdir()) == [
        "faults.sgy", "faults.sgy.json", "labels.npy", "labels.npy.json", "probabilities.dat", "probabilities.dat.json"
    ]

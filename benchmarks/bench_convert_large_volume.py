"""Benchmark: convert a SEG-Y cube larger than 1 GB without loading it, and report time and peak memory.

Writes an IEEE-float SEG-Y seismic cube and a uint8 ``.npy`` fault-label cube to a temporary folder (inline by
inline, so writing stays small too), then, each in a fresh process so that its peak RSS is its own:

1. ``read``: consumes every section of the ``segy`` reader (``geofm_hf.data.sources``);
2. ``build``: converts through the dataset builder (``geofm_hf.data.builder.build_dataset_folder``) to Parquet.

Peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of that process; it includes the pages of memory-mapped files it
touched (the label ``.npy``, and for ``build`` the Arrow cache), so the peaks of anonymous memory and of mapped file
pages are also sampled from ``/proc/self/status``. ``tracemalloc`` gives the peak of Python and NumPy allocations.

Usage::

    python benchmarks/bench_convert_large_volume.py                       # 256 x 256 x 4096 float32 = 1.07 GB
    python benchmarks/bench_convert_large_volume.py --shape 128,128,1024 --phases read   # quick look
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import segyio


def write_cube(folder: Path, shape: tuple[int, int, int], seed: int = 0) -> tuple[Path, Path]:
    """Write ``seismic.sgy`` (IEEE float) and ``faults.npy`` (uint8 0/1) of ``shape`` = (inline, crossline, sample)."""
    n_inline, n_crossline, n_samples = shape
    rng = np.random.default_rng(seed)
    spec = segyio.spec()
    spec.format = 5
    spec.sorting = segyio.TraceSortingFormat.INLINE_SORTING
    spec.samples = list(range(n_samples))
    spec.ilines, spec.xlines = list(range(1, n_inline + 1)), list(range(1, n_crossline + 1))
    seismic, labels = folder / "seismic.sgy", folder / "faults.npy"
    label_map = np.lib.format.open_memmap(labels, mode="w+", dtype=np.uint8, shape=shape)
    with segyio.create(str(seismic), spec) as handle:
        for i in range(n_inline):
            block = rng.standard_normal((n_crossline, n_samples), dtype=np.float32)
            label_map[i] = block > 1.6  # about 5% "fault" pixels
            for j in range(n_crossline):
                trace = i * n_crossline + j
                handle.header[trace] = {segyio.TraceField.INLINE_3D: i + 1, segyio.TraceField.CROSSLINE_3D: j + 1}
                handle.trace[trace] = block[j]
    label_map.flush()
    del label_map
    return seismic, labels


class RssSampler(threading.Thread):
    """Polls /proc/self/status (Linux) for the peaks of anonymous memory and of mapped file pages.

    ``ru_maxrss`` adds both; memory-mapped inputs and Arrow files inflate it with file pages the kernel can drop at
    any time, while anonymous memory is what the process really holds.
    """

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        self.interval, self.peaks, self.done = interval, {"RssAnon": 0, "RssFile": 0}, threading.Event()

    def run(self) -> None:
        status = Path("/proc/self/status")
        while not self.done.is_set() and status.exists():
            for line in status.read_text().splitlines():
                name, _, value = line.partition(":")
                if name in self.peaks:
                    self.peaks[name] = max(self.peaks[name], int(value.split()[0]))
            time.sleep(self.interval)


def _measured(work) -> dict:
    sampler = RssSampler()
    sampler.start()
    tracemalloc.start()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sampler.done.set()
    sampler.join()
    return {
        **result,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anon_mb": sampler.peaks["RssAnon"] / 1024,
        "peak_file_mb": sampler.peaks["RssFile"] / 1024,
        "traced_peak_mb": traced_peak / 2**20,
    }


def read_phase(folder: str, axis: str) -> dict:
    """Consume every section of the segy reader."""
    from geofm_hf.data.records import SOURCES
    from geofm_hf.data.sources import segy  # noqa: F401  (registers the reader)
    from geofm_hf.models.tasks import get_task

    def work() -> dict:
        splits = SOURCES["segy"].reader(Path(folder), get_task("fault"), label="faults.npy", axis=axis)
        count = nbytes = 0
        for section in splits["train"]:
            count += 1
            nbytes += section.image.nbytes + section.label.nbytes
        return {"sections": count, "section_mb": nbytes / 2**20}

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**_measured(work), "baseline_rss_mb": baseline}


def build_phase(folder: str, axis: str) -> dict:
    """Convert through the dataset builder to a Parquet dataset folder."""
    from geofm_hf.data.builder import build_dataset_folder

    output = Path(folder) / "dataset"

    def work() -> dict:
        build_dataset_folder("fault", "segy", output, input_dir=folder, options={"label": "faults.npy", "axis": axis})
        parquet = sum(p.stat().st_size for p in (output / "data").glob("*.parquet"))
        return {"parquet_mb": parquet / 2**20}

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**_measured(work), "baseline_rss_mb": baseline}


PHASES = {"read": read_phase, "build": build_phase}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="256,256,4096", help="inline,crossline,sample counts of the cube")
    parser.add_argument("--axis", default="both", choices=("inline", "crossline", "both"))
    parser.add_argument("--phases", default="read,build", help="comma-separated, from: " + ", ".join(PHASES))
    parser.add_argument("--workdir", default=None, help="where to write the cube (default: a temporary folder)")
    args = parser.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split(","))
    folder = Path(tempfile.mkdtemp(prefix="geofm-bench-", dir=args.workdir))
    try:
        start = time.perf_counter()
        seismic, labels = write_cube(folder, shape)
        size_gb = seismic.stat().st_size / 1e9
        print(f"wrote {seismic.name} {size_gb:.2f} GB + {labels.name} {labels.stat().st_size / 1e9:.2f} GB "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        for name in args.phases.split(","):
            # A fresh process per phase, so that each peak RSS belongs to that phase alone.
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                result = pool.submit(PHASES[name], str(folder), args.axis).result()
            details = " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
            print(f"convert_large_volume phase={name} cube={args.shape} segy_gb={size_gb:.2f} axis={args.axis} "
                  f"{details}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

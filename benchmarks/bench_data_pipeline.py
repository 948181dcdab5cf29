"""Benchmark of the training data pipeline (not a test): samples/s per worker through `SectionDataset`.

For each section size, a synthetic fault dataset is written to Arrow (as `geofm dataset` does) and its train split is
read three ways, each by one process on one thread, as one DataLoader worker does:

* Arrow reads alone (rows/s): the row as numpy arrays, the floor of the pipeline;
* `SectionDataset` (normalisation with each section's own statistics, random flips, torch tensors) with the percentile
  statistics of before issue 12 (`np.percentile` over a float64 copy), and as they are now (the same order statistics
  by bracketed selection, bit for bit equal);

side by side, with the time per section spent normalising. The best of ``--repeats`` passes is reported.

Usage:
    python benchmarks/bench_data_pipeline.py                      # 101^2 and 896^2
    python benchmarks/bench_data_pipeline.py --sizes 896 --rows 32
"""

from __future__ import annotations

import os

# Read when tqdm is imported: the dataset builder's progress bars would interleave with the table.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402  (after the environment above)
import contextlib  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from geofm_hf.data import build_dataset_dict, read_source  # noqa: E402
from geofm_hf.models.geofm import image_processing_geofm  # noqa: E402
from geofm_hf.models.geofm.image_processing_geofm import GeoFMImageProcessor  # noqa: E402
from geofm_hf.models.tasks import get_task  # noqa: E402
from geofm_hf.training.config import AugmentationSettings  # noqa: E402
from geofm_hf.training.data import SectionDataset  # noqa: E402


def numpy_percentiles(values: np.ndarray, percentiles: Sequence[float]) -> list[float]:
    """The statistics as computed before: ``np.percentile`` over a float64 copy of every value."""
    return [float(v) for v in np.percentile(np.asarray(values, dtype=np.float64), percentiles)]


@contextlib.contextmanager
def statistics(kind: str) -> Iterator[None]:
    """Within the block the processor computes percentiles the ``kind`` way: ``before`` or ``now``."""
    if kind == "now":
        yield
        return
    with mock.patch.object(image_processing_geofm, "_percentiles", numpy_percentiles):
        yield


def best_rate(read: Callable[[int], object], rows: int, repeats: int) -> float:
    """Rows per second of ``read(i)`` over every row, best of ``repeats`` passes (the first also warms caches)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(rows):
            read(index)
        best = min(best, time.perf_counter() - start)
    return rows / best


def normalise_milliseconds(images: list[np.ndarray], processor: GeoFMImageProcessor, repeats: int) -> float:
    """Milliseconds per section of ``processor.normalize`` with each section's own statistics, best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            processor.normalize(image)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / len(images)


def bench_size(size: int, rows: int, repeats: int, folder: str) -> None:
    task = get_task("fault")
    splits = read_source("synthetic", task, None, {"num": rows, "seed": 0, "size": str(size)})
    train = build_dataset_dict(splits, task, cache_dir=os.path.join(folder, str(size)))["train"]
    arrow = train.select_columns(["image", "label"]).with_format("numpy")
    count = len(arrow)
    read_rate = best_rate(lambda i: (np.asarray(arrow[i]["image"], np.float32), arrow[i]["label"]), count, repeats)
    processor = GeoFMImageProcessor()
    # The training split's default augmentation (random flips).
    dataset = SectionDataset(train, processor, AugmentationSettings(), seed=0)
    images = [np.asarray(arrow[i]["image"], np.float32) for i in range(min(count, 16))]
    rates, milliseconds = {}, {}
    for kind in ("before", "now"):
        with statistics(kind):
            rates[kind] = best_rate(dataset.__getitem__, count, repeats)
            milliseconds[kind] = normalise_milliseconds(images, processor, repeats)
    print(
        f"{f'{size}x{size}':<10}{count:>6}{read_rate:>12,.0f}{rates['before']:>12,.1f}{rates['now']:>12,.1f}"
        f"{rates['now'] / rates['before']:>9.2f}x{milliseconds['before']:>11.1f}{milliseconds['now']:>11.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(n) for n in s.split(",")], default=[101, 896])
    parser.add_argument("--rows", type=int, default=48, help="synthetic sections per size (70%% land in train)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per measurement; the fastest is reported")
    parser.add_argument("--scratch", default=None, help="folder for the Arrow files (default: the system temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"samples/s per worker (one process, one thread), best of {args.repeats}; statistics 'before' = np.percentile "
        "over a float64 copy, 'now' = bracketed selection (equal bit for bit)"
    )
    print(f"{'':<16}{'Arrow':>12}{'SectionDataset samples/s':>34}{'normalise ms/section':>22}")
    print(
        f"{'section':<10}{'rows':>6}{'rows/s':>12}{'before':>12}{'now':>12}{'speed-up':>10}{'before':>11}{'now':>11}"
    )
    with tempfile.TemporaryDirectory(prefix="geofm-bench-data-", dir=args.scratch) as folder:
        for size in args.sizes:
            bench_size(size, args.rows, args.repeats, folder)


if __name__ == "__main__":
    main()

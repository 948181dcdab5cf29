"""Synthetic generators and the ``synthetic`` source: shapes, classes, determinism, splits."""

import numpy as np
import pytest

from geofm_hf.data.synthetic import (
    DEFAULT_SIZE,
    GENERATORS,
    convolve_n1,
    read_synthetic,
    ricker,
    smooth_noise,
    split_counts,
)
from geofm_hf.models.tasks import TASKS
from geofm_hf.study import study_task


def _generate(task: str, seed: int, size=DEFAULT_SIZE):
    return GENERATORS[task](np.random.default_rng(seed), size)


def test_every_task_has_a_generator():
    assert set(GENERATORS) == set(TASKS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generator_shapes_dtypes_and_classes(task):
    section = _generate(task, 0, (48, 40))
    assert section.image.shape == section.label.shape == (48, 40)
    assert section.image.dtype == np.float32 and section.label.dtype == np.uint8
    assert np.isfinite(section.image).all()
    assert int(section.label.max()) < TASKS[task].num_labels
    # Standardised per section.
    assert abs(float(section.image.mean())) < 1e-4 and abs(float(section.image.std()) - 1.0) < 1e-3


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generator_is_deterministic_and_seed_dependent(task):
    first, again, other = _generate(task, 7), _generate(task, 7), _generate(task, 8)
    assert first.image.tobytes() == again.image.tobytes() and first.label.tobytes() == again.label.tobytes()
    assert first.image.tobytes() != other.image.tobytes()


@pytest.mark.parametrize("task", ["fault", "salt", "crater", "das-event"])
def test_binary_generators_draw_both_classes(task):
    for seed in range(5):
        assert set(np.unique(_generate(task, seed).label)) == {0, 1}, f"seed {seed}"


def test_facies_has_all_six_units_in_every_trace():
    for seed in range(5):
        label = _generate("seismic-facies", seed).label
        for column in label.T:
            assert set(np.unique(column)) == set(range(6)), f"seed {seed}"
        # Units are stacked: class ids never increase downwards (5 on top, basement 0 at the bottom).
        assert (np.diff(label.astype(np.int64), axis=0) <= 0).all()


def test_penobscot_intervals_are_eight_units_numbered_from_the_top():
    for seed in range(3):
        label = _generate("facies-penobscot", seed, (96, 40)).label
        for column in label.T:
            assert set(np.unique(column)) == set(range(8)), f"seed {seed}"
        assert (np.diff(label.astype(np.int64), axis=0) >= 0).all()


def test_fault_labels_are_thin_traces():
    label = _generate("fault", 3).label
    # 1-3 faults about 2-3 px wide crossing 128 rows: a few hundred pixels, far from a filled region.
    assert 128 * 2 <= label.sum() <= 128 * 3 * 4


def test_ricker_is_centred_symmetric_with_unit_peak():
    wavelet = ricker(0.1)
    middle = wavelet.size // 2
    assert wavelet[middle] == 1.0
    np.testing.assert_allclose(wavelet, wavelet[::-1])
    # (1 - 2a) exp(-a) with a = (pi f t)^2: at t = 2 samples, f = 0.1.
    a = (np.pi * 0.1 * 2) ** 2
    assert wavelet[middle + 2] == pytest.approx((1 - 2 * a) * np.exp(-a))


def test_convolve_n1_of_a_spike_is_the_centred_wavelet():
    data = np.zeros((40, 3))
    data[20, 1] = 2.0
    wavelet = ricker(0.1)
    out = convolve_n1(data, wavelet)
    half = wavelet.size // 2
    np.testing.assert_allclose(out[20 - half : 20 + half + 1, 1], 2.0 * wavelet, atol=1e-12)
    np.testing.assert_allclose(out[:, [0, 2]], 0.0, atol=1e-12)


def test_smooth_noise_has_unit_std_and_is_smooth():
    field = smooth_noise(np.random.default_rng(0), (64, 64), (8.0, 8.0))
    assert field.std() == pytest.approx(1.0)
    # Correlated over 8 px: neighbouring values differ much less than independent ones would (std sqrt(2)).
    assert np.diff(field, axis=0).std() < 0.5


def test_split_counts():
    assert split_counts(20) == {"train": 14, "validation": 3, "test": 3}
    assert split_counts(3) == {"train": 1, "validation": 1, "test": 1}
    with pytest.raises(ValueError, match="num=2"):
        split_counts(2)


def test_read_synthetic_splits_provenance_and_reproducibility():
    task = TASKS["salt"]
    splits = read_synthetic(None, task, num="7", seed=3, size="40,48")
    sections = {name: list(iterator) for name, iterator in splits.items()}
    assert {name: len(items) for name, items in sections.items()} == {"train": 5, "validation": 1, "test": 1}
    ordered = [s for name in ("train", "validation", "test") for s in sections[name]]
    assert [s.section_index for s in ordered] == list(range(7))
    assert {s.source_file for s in ordered} == {"synthetic/salt/seed-3"}
    assert all(s.image.shape == (40, 48) for s in ordered)
    # Section i depends on (seed, i) only: a bigger build starts with the same sections.
    bigger = list(read_synthetic(None, task, num=20, seed=3, size=(40, 48))["train"])
    for small, large in zip(sections["train"], bigger):
        assert small.image.tobytes() == large.image.tobytes()


def test_read_synthetic_native_size_and_bad_input(tmp_path):
    task = TASKS["salt"]
    section = next(read_synthetic(None, task, num=3, size="native")["test"])
    assert section.image.shape == study_task(task.name).native_size
    with pytest.raises(ValueError, match="reads no input"):
        read_synthetic(tmp_path, task, num=3)
    for bad in ("40,48,3", "4,4", "big"):
        with pytest.raises(ValueError, match="size"):
            read_synthetic(None, task, num=3, size=bad)

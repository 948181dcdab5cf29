"""Seeded synthetic sections for the five tasks, registered as source ``synthetic``.

Every generator maps ``(rng, (n1, n2))`` to a :class:`~geofm_hf.data.records.Section` whose image is standardised
(zero mean, unit standard deviation, float32) and whose label holds the task's class ids. The models are simple but
physical enough to learn from: seismic sections are impedance models (layers, folds, faults, salt) turned into
reflectivity and convolved with a Ricker wavelet along n1, as in Wu et al. (2019); DAS records are moveout curves of P
and S arrivals over coherent noise; crater images are hill-shaded height fields.

Section ``i`` of a build is drawn from ``numpy.random.default_rng([seed, i])``, so a section depends only on the seed
and its index: the same seed gives the same arrays bit for bit, whatever ``num`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..models.tasks import TaskSpec
from ..study import study_task
from .records import Section, register_source
from ..io.options import as_int, as_ints

DEFAULT_SIZE = (128, 128)
# Split names and shares of the synthetic source; every split gets at least one section.
SPLIT_SHARES = (("train", 0.70), ("validation", 0.15), ("test", 0.15))

SectionGenerator = Callable[[np.random.Generator, tuple[int, int]], Section]


# --- shared physics ----------------------------------------------------------------------------------------------


def ricker_at(offset: np.ndarray, peak_frequency: float) -> np.ndarray:
    """Ricker wavelet ``(1 - 2a) exp(-a)``, ``a = (pi f t)^2``, at offsets ``t`` in samples (any shape, fractional)."""
    arg = (np.pi * peak_frequency * offset) ** 2
    return (1.0 - 2.0 * arg) * np.exp(-arg)


def ricker(peak_frequency: float) -> np.ndarray:
    """Ricker wavelet sampled at unit spacing, ``peak_frequency`` in cycles per sample, centred on its middle sample."""
    half = int(np.ceil(1.5 / peak_frequency))
    return ricker_at(np.arange(-half, half + 1), peak_frequency)


def convolve_n1(data: np.ndarray, wavelet: np.ndarray) -> np.ndarray:
    """Convolve every trace (column) of ``data`` with a centred ``wavelet``; zero-padded, so no wrap-around."""
    n = data.shape[0] + wavelet.size - 1
    spectrum = np.fft.rfft(data, n, axis=0) * np.fft.rfft(wavelet, n)[:, None]
    start = wavelet.size // 2
    return np.fft.irfft(spectrum, n, axis=0)[start : start + data.shape[0]]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], correlation: tuple[float, float]) -> np.ndarray:
    """Gaussian random field with Gaussian correlation lengths ``correlation`` (pixels along n1, n2), unit std."""
    k1 = np.fft.fftfreq(shape[0])[:, None]
    k2 = np.fft.rfftfreq(shape[1])[None, :]
    taper = np.exp(-2.0 * np.pi**2 * ((k1 * correlation[0]) ** 2 + (k2 * correlation[1]) ** 2))
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * taper, shape)
    return field / (field.std() or 1.0)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], exponent: float) -> np.ndarray:
    """Random field with power spectrum ``|k| ** -exponent`` (terrain-like for exponents 2-3), unit std."""
    k = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
    k[0, 0] = np.inf  # no mean component
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * k ** (-exponent / 2.0), shape)
    return field / (field.std() or 1.0)


def layer_series(rng: np.random.Generator, length: int, thickness: tuple[int, int], contrast: float) -> np.ndarray:
    """1-D piecewise-constant log-impedance: layers of ``thickness`` samples with N(0, contrast) values."""
    count = length // thickness[0] + 1
    values = rng.normal(0.0, contrast, count)
    return np.repeat(values, rng.integers(thickness[0], thickness[1] + 1, count))[:length]


def sample_series(series: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Linearly interpolate ``series`` at fractional ``position`` (clamped to its ends)."""
    return np.interp(position, np.arange(series.size), series)


@dataclass(frozen=True)
class Folding:
    """Vertical shift of the layers: Gaussian bumps whose amplitude grows with depth, plus a planar dip.

    As in Wu et al. (2019): ``s(x1, x2) = dip * x2 + 1.5 * x1 / n1 * sum_k a_k exp(-(x2 - c_k)^2 / (2 w_k^2))``.
    """

    amplitudes: np.ndarray
    centres: np.ndarray
    widths: np.ndarray
    dip: float
    n1: int

    @classmethod
    def random(cls, rng: np.random.Generator, size: tuple[int, int], strength: float) -> Folding:
        n1, n2 = size
        count = int(rng.integers(2, 6))
        return cls(
            amplitudes=rng.uniform(-1.0, 1.0, count) * strength * n1,
            centres=rng.uniform(0.0, n2, count),
            widths=rng.uniform(0.1, 0.35, count) * n2,
            dip=float(rng.uniform(-0.15, 0.15)) * n1 / n2,
            n1=n1,
        )

    def __call__(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        bumps = sum(
            a * np.exp(-((x2 - c) ** 2) / (2.0 * w**2)) for a, c, w in zip(self.amplitudes, self.centres, self.widths)
        )
        return self.dip * x2 + 1.5 * x1 / self.n1 * bumps


def seismic_from_impedance(
    rng: np.random.Generator, log_impedance: np.ndarray, noise: tuple[float, float]
) -> np.ndarray:
    """Reflectivity (vertical derivative of log-impedance) convolved with a random Ricker wavelet, plus noise.

    ``noise`` bounds the noise-to-signal standard-deviation ratio.
    """
    reflectivity = np.diff(log_impedance, axis=0, prepend=log_impedance[:1])
    trace = convolve_n1(reflectivity, ricker(rng.uniform(0.04, 0.09)))
    return trace + rng.uniform(*noise) * trace.std() * rng.standard_normal(trace.shape)


def standardise(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit std, float32."""
    return ((image - image.mean()) / (image.std() or 1.0)).astype(np.float32)


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    x1, x2 = np.mgrid[0 : size[0], 0 : size[1]]
    return x1.astype(np.float64), x2.astype(np.float64)


def _section(image: np.ndarray, label: np.ndarray) -> Section:
    # Provenance is filled in by the reader, which knows the seed and index.
    return Section(image=standardise(image), label=label.astype(np.uint8), source_file="")


# --- generators --------------------------------------------------------------------------------------------------


def generate_fault(rng: np.random.Generator, size: tuple[int, int]) -> Section:
    """Folded layers cut by 1-3 planar faults with throw (Wu et al. 2019); label = fault traces about 2 px wide.

    Faults are applied youngest first to the output coordinates, so an older fault's trace is offset by the younger
    ones, as in nature.
    """
    n1, n2 = size
    x1, x2 = _grid(size)
    margin = n1
    series = layer_series(rng, n1 + 2 * margin, (2, 10), 1.0)
    folding = Folding.random(rng, size, strength=0.08)
    label = np.zeros(size, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        dip = np.deg2rad(rng.uniform(55.0, 80.0))
        along = np.array([np.sin(dip), np.cos(dip) * rng.choice((-1.0, 1.0))])  # (d1, d2) down the fault plane
        anchor = (n1 / 2.0, rng.uniform(0.15, 0.85) * n2)
        distance = (x1 - anchor[0]) * -along[1] + (x2 - anchor[1]) * along[0]
        label |= np.abs(distance) <= 1.0
        throw = rng.uniform(0.03, 0.1) * n1 * rng.choice((-1.0, 1.0))
        moved = distance > 0
        x1 = np.where(moved, x1 - throw * along[0], x1)
        x2 = np.where(moved, x2 - throw * along[1], x2)
    log_impedance = sample_series(series, x1 + margin - folding(x1, x2))
    return _section(seismic_from_impedance(rng, log_impedance, (0.05, 0.4)), label)


def generate_salt(rng: np.random.Generator, size: tuple[int, int]) -> Section:
    """Folded layers intruded by one or two lobed salt bodies: strong top/base reflections, weak chaotic interior."""
    n1, n2 = size
    x1, x2 = _grid(size)
    series = layer_series(rng, 3 * n1, (2, 10), 1.0)
    log_impedance = sample_series(series, x1 + n1 - Folding.random(rng, size, strength=0.06)(x1, x2))
    body = np.zeros(size, dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        centre = (rng.uniform(0.3, 0.95) * n1, rng.uniform(0.0, 1.0) * n2)
        radius = rng.uniform(0.15, 0.35) * min(size)
        stretch = rng.uniform(0.6, 1.6)  # bodies are often taller (diapirs) or wider (sheets) than round
        angle = np.arctan2(x1 - centre[0], x2 - centre[1])
        lobes = 1.0 + sum(
            rng.uniform(0.0, 0.25 / k) * np.cos(k * angle + rng.uniform(0.0, 2 * np.pi)) for k in range(2, 6)
        )
        body |= np.hypot((x1 - centre[0]) / stretch, x2 - centre[1]) < radius * lobes
    interior = log_impedance.max() + rng.uniform(1.5, 3.0) + 0.05 * rng.standard_normal(size)
    log_impedance = np.where(body, interior, log_impedance)
    return _section(seismic_from_impedance(rng, log_impedance, (0.05, 0.3)), body)


@dataclass(frozen=True)
class FaciesCharacter:
    """Reflection character of one facies: layer contrast, layer thickness (samples), chaos (disrupted reflectors)."""

    contrast: float
    thickness: tuple[int, int]
    chaos: float


# Indexed by class id (see TaskSpec.label_names of "seismic-facies"); units are stacked with class 5 on top and
# class 0 (basement) at the bottom. Only the consistency of a class's character matters for learning.
FACIES_CHARACTERS = (
    FaciesCharacter(contrast=1.5, thickness=(6, 14), chaos=0.8),  # basement: strong, discontinuous
    FaciesCharacter(contrast=1.0, thickness=(2, 4), chaos=0.0),  # slope mudstone A: thin, continuous
    FaciesCharacter(contrast=0.8, thickness=(3, 8), chaos=0.6),  # mass transport complex: chaotic
    FaciesCharacter(contrast=0.5, thickness=(4, 8), chaos=0.05),  # slope mudstone B: weak, continuous
    FaciesCharacter(contrast=1.2, thickness=(2, 6), chaos=0.3),  # slope valley: strong, wavy
    FaciesCharacter(contrast=0.3, thickness=(6, 12), chaos=0.15),  # submarine canyon fill: weak, low frequency
)


# Penobscot's eight intervals, class 0 on top; characters vary so that each interval is recognisable.
INTERVAL_CHARACTERS = (
    FaciesCharacter(contrast=0.3, thickness=(6, 12), chaos=0.1),
    FaciesCharacter(contrast=1.0, thickness=(2, 4), chaos=0.0),
    FaciesCharacter(contrast=0.6, thickness=(3, 6), chaos=0.3),
    FaciesCharacter(contrast=1.3, thickness=(2, 5), chaos=0.1),
    FaciesCharacter(contrast=0.5, thickness=(4, 8), chaos=0.05),
    FaciesCharacter(contrast=0.9, thickness=(3, 8), chaos=0.6),
    FaciesCharacter(contrast=1.2, thickness=(2, 6), chaos=0.3),
    FaciesCharacter(contrast=1.5, thickness=(6, 14), chaos=0.8),
)


def stacked_units(
    rng: np.random.Generator, size: tuple[int, int], characters: Sequence[FaciesCharacter], top_class: int
) -> Section:
    """Units stacked with gently folded boundaries, each with its class's reflection character; class ids run from
    ``top_class`` at the top to the other end of ``characters`` at the bottom.

    Boundary undulations are bounded so that every unit keeps at least n1/20 of thickness: every class appears in
    every trace.
    """
    n1, n2 = size
    x1 = _grid(size)[0]
    units = len(characters)
    columns = np.arange(n2, dtype=np.float64)
    # A deformation shared by all boundaries (it moves units, not their thickness), capped at n1/12, plus a small
    # undulation of each boundary: with units n1/units thick on average, none pinches out or leaves the section.
    common = Folding.random(rng, (n1, n2), strength=0.04)(np.full(n2, n1 / 2.0), columns)
    common -= common.mean()
    common *= min(1.0, n1 / 12 / (np.abs(common).max() or 1.0))
    boundaries = [
        n1 * k / units
        + rng.uniform(-1, 1) * n1 / (5 * units)
        + common
        + np.clip(smooth_noise(rng, (1, n2), (1.0, n2 / 4))[0], -2.0, 2.0) * n1 / (40 * units / 3)
        for k in range(1, units)
    ]
    depth_order = sum((x1 >= boundary[None, :]).astype(np.int64) for boundary in boundaries)  # 0 = top unit
    label = depth_order if top_class == 0 else (units - 1) - depth_order
    log_impedance = np.zeros(size)
    for class_id, character in enumerate(characters):
        inside = label == class_id
        series = layer_series(rng, 3 * n1, character.thickness, character.contrast)
        disruption = character.chaos * 6.0 * smooth_noise(rng, size, (2.0, rng.uniform(2.0, 6.0)))
        position = x1 + n1 - common[None, :] + disruption
        log_impedance[inside] = sample_series(series, position[inside]) + rng.normal(0.0, 1.0)
    return _section(seismic_from_impedance(rng, log_impedance, (0.05, 0.3)), label)


def generate_seismic_facies(rng: np.random.Generator, size: tuple[int, int]) -> Section:
    """Six stacked SEAM-like units, class 5 on top and basement (0) at the bottom (see :func:`stacked_units`)."""
    return stacked_units(rng, size, FACIES_CHARACTERS, top_class=len(FACIES_CHARACTERS) - 1)


def generate_penobscot_intervals(rng: np.random.Generator, size: tuple[int, int]) -> Section:
    """Eight stacked intervals, class 0 on top as in Penobscot's interpretation (see :func:`stacked_units`)."""
    return stacked_units(rng, size, INTERVAL_CHARACTERS, top_class=0)


def generate_das_event(rng: np.random.Generator, size: tuple[int, int]) -> Section:
    """DAS record (n1 = time samples, n2 = channels): 1-2 earthquakes with hyperbolic P and S moveout over noise.

    Noise is a common-mode low-frequency signal with smoothly varying channel gain, slow linear events (traffic) and
    white noise. Label = samples within the main lobe of each arrival's wavelet.
    """
    n1, n2 = size
    t, channel = _grid(size)
    common_mode = smooth_noise(rng, (n1, 1), (n1 / 40, 1.0))[:, 0]
    channel_gain = 1.0 + 0.5 * smooth_noise(rng, (1, n2), (1.0, n2 / 5))[0]
    image = np.outer(common_mode, channel_gain)
    for _ in range(int(rng.integers(0, 3))):
        arrival = rng.uniform(0, n1) + (channel - rng.uniform(0, n2)) * rng.uniform(0.5, 2.0) * n1 / n2
        image += rng.uniform(0.3, 1.0) * ricker_at(t - arrival, rng.uniform(0.01, 0.02))
    label = np.zeros(size, dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        apex_channel = rng.uniform(0.0, n2)
        depth = rng.uniform(0.2, 1.0) * n2  # hypocentre distance from the fibre, in channel spacings
        distance = np.hypot(depth, channel[0] - apex_channel)
        p_apex = rng.uniform(0.05, 0.45) * n1
        slowness = rng.uniform(0.1, 0.3) * n1 / n2  # samples per channel spacing
        for ratio, gain in ((1.0, 1.0), (1.73, rng.uniform(1.5, 3.0))):  # P, then S (vp / vs = 1.73)
            arrival = p_apex + ratio * slowness * (distance - depth) + (ratio - 1.0) * slowness * depth
            frequency = rng.uniform(0.05, 0.12) / ratio
            amplitude = gain * rng.uniform(2.0, 5.0) * depth / distance
            image += amplitude[None, :] * ricker_at(t - arrival[None, :], frequency)
            half_lobe = max(2.0, 1.0 / (np.pi * frequency * np.sqrt(2.0)))
            label |= np.abs(t - arrival[None, :]) <= half_lobe
    image += rng.uniform(0.3, 1.0) * rng.standard_normal(size)
    return _section(image, label)


def generate_crater(rng: np.random.Generator, size: tuple[int, int]) -> Section:
    """Hill-shaded terrain (fractal noise plus bowl craters with raised rims and ejecta); label = crater discs.

    Radii are log-uniform (many small craters, few large); the sun is low, as in the study's lunar images.
    """
    n1, n2 = size
    x1, x2 = _grid(size)
    terrain = fractal_noise(rng, size, rng.uniform(2.2, 3.0))
    # Scaled by its mean slope so that craters (bowl slopes near 0.8) stand out of rough and smooth terrain alike.
    height = terrain * rng.uniform(0.05, 0.25) / (np.hypot(*np.gradient(terrain)).mean() or 1.0)
    label = np.zeros(size, dtype=bool)
    smallest, largest = 3.0, max(4.0, 0.2 * min(size))
    count = max(1, int(rng.poisson(8 * n1 * n2 / 128**2)))
    for _ in range(count):
        radius = smallest * (largest / smallest) ** rng.uniform()
        centre = (rng.uniform(0, n1), rng.uniform(0, n2))
        # Ejecta fall off as rho**-3: beyond 3 radii they are below 4 % of the rim, so only that window is touched.
        window = tuple(
            slice(max(0, int(c - 3 * radius)), min(n, int(c + 3 * radius) + 1)) for c, n in zip(centre, size)
        )
        rho = np.hypot(x1[window] - centre[0], x2[window] - centre[1]) / radius
        rim = 0.08 * radius
        bowl = 0.4 * radius * (rho**2 - 1.0) + rim
        ejecta = rim * np.maximum(rho, 1.0) ** -3
        height[window] += np.where(rho < 1.0, bowl, ejecta)
        label[window] |= rho <= 1.0
    elevation, azimuth = np.deg2rad(rng.uniform(10.0, 40.0)), rng.uniform(0.0, 2 * np.pi)
    slope1, slope2 = np.gradient(height)
    shade = (np.sin(elevation) - np.cos(elevation) * (slope1 * np.cos(azimuth) + slope2 * np.sin(azimuth))) / np.sqrt(
        1.0 + slope1**2 + slope2**2
    )
    albedo = 1.0 + 0.1 * smooth_noise(rng, size, (n1 / 8, n2 / 8))
    image = np.clip(shade, 0.0, None) * albedo + 0.02 * rng.standard_normal(size)
    return _section(image, label)


GENERATORS: dict[str, SectionGenerator] = {
    "seismic-facies": generate_seismic_facies,
    "facies-penobscot": generate_penobscot_intervals,
    "salt": generate_salt,
    "crater": generate_crater,
    "das-event": generate_das_event,
    "fault": generate_fault,
}


# --- source ------------------------------------------------------------------------------------------------------


def split_counts(num: int) -> dict[str, int]:
    """Sections per split for ``num`` sections (70/15/15, rounded; train takes the remainder)."""
    if num < len(SPLIT_SHARES):
        raise ValueError(f"Option num={num}: expected at least {len(SPLIT_SHARES)} so every split gets a section")
    counts = {name: max(1, round(num * share)) for name, share in SPLIT_SHARES[1:]}
    return {SPLIT_SHARES[0][0]: num - sum(counts.values()), **counts}


def generate_sections(task: TaskSpec, seed: int, indices: range, size: tuple[int, int]) -> Iterator[Section]:
    """Yield the synthetic sections ``indices`` of ``task`` for ``seed``, with their provenance."""
    generator = GENERATORS[task.name]
    for index in indices:
        section = generator(np.random.default_rng([seed, index]), size)
        yield replace(section, source_file=f"synthetic/{task.name}/seed-{seed}", section_index=index)


def parse_size(value: Any, task: TaskSpec) -> tuple[int, int]:
    """``"native"`` (the task's size in the study) or ``n1,n2`` / a pair of ints."""
    if isinstance(value, str) and value.strip().lower() == "native":
        return study_task(task.name).native_size
    return as_ints("size", value, (2,), minimum=8)


@register_source(
    "synthetic",
    tasks=tuple(GENERATORS),
    description="Seeded synthetic sections made by geofm_hf.data.synthetic",
)
def read_synthetic(
    input_dir: Path | None, task: TaskSpec, num: Any = 100, seed: Any = 0, size: Any = DEFAULT_SIZE
) -> dict[str, Iterator[Section]]:
    """Reader of the ``synthetic`` source: ``num`` sections split 70/15/15 into train/validation/test.

    Args:
        input_dir: must be None: nothing is read.
        task: task whose generator is used.
        num: number of sections in all (at least 3).
        seed: seed of the build; section ``i`` uses ``default_rng([seed, i])``.
        size: ``(n1, n2)``, ``"n1,n2"`` or ``"native"`` for the task's size in the study. Defaults to 128x128.
    """
    if input_dir is not None:
        raise ValueError(f"The synthetic source reads no input; got input folder {input_dir}")
    num, seed, shape = as_int("num", num), as_int("seed", seed, minimum=0), parse_size(size, task)
    splits, start = {}, 0
    for name, count in split_counts(num).items():
        splits[name] = generate_sections(task, seed, range(start, start + count), shape)
        start += count
    return splits

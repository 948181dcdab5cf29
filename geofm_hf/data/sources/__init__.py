"""Readers of the original geophysical source formats.

Importing this package registers every reader in :data:`geofm_hf.data.records.SOURCES` under its source name:
``tgs``, ``segy``, ``f3``, ``png``, ``boxes``, ``dem``, ``npz`` and ``dat``.
"""

from . import crater, das, npy_volume, png_pairs, raw_volume, segy, tgs

__all__ = ["crater", "das", "npy_volume", "png_pairs", "raw_volume", "segy", "tgs"]

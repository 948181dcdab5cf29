"""Readers of the original geophysical source formats.

Importing this package registers every reader in :data:`geofm_hf.data.records.SOURCES`.
"""

"""Test-suite wide settings: the suite is hermetic — no Hub, caches in a temp dir."""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="geofm-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

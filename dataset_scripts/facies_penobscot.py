"""Build the facies-penobscot dataset (Penobscot's 8 intervals) (Parquet shards + dataset card, Hub repo layout) from a source; see README.md here.

    python dataset_scripts/facies_penobscot.py --source SOURCE [--input DIR] --output DIR [--push-to-hub REPO_ID]
"""

import sys
from pathlib import Path

# Run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geofm_hf.cli.dataset import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(task="facies-penobscot"))

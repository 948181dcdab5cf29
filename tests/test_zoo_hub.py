"""``zoo:NAME@hub``: an entry pinned to a pushed repo loads that commit from a Hub-protocol server (olah on
127.0.0.1), in a fresh process as a user would, even after the repo's main branch has moved on."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import geofm_hf.zoo
from geofm_hf import GeoFMImageProcessor
from geofm_hf.hub import stage_model_folder
from hub_server import NO_PROXY, OLAH_CLI, OLAH_MISSING, start_olah

pytestmark = [pytest.mark.hub, pytest.mark.slow]  # starts a Hub server and a client process

REPO_ID = "geofm-tests/zoo-salt"
# The client: the entries folder is the test's, then both references are loaded and run on one input.
CLIENT = """
import sys
from pathlib import Path
import numpy as np, torch
import geofm_hf.zoo
from geofm_hf.zoo import entry
entry.ENTRIES_DIR = Path(sys.argv[1])
pixel_values = torch.from_numpy(np.load(sys.argv[2]))
logits = {}
for reference in ("zoo:pinned", "zoo:pinned@hub"):
    model, processor = geofm_hf.zoo.load(reference)
    with torch.no_grad():
        logits[reference] = model(pixel_values=pixel_values).logits.numpy()
    assert processor.to_dict()["image_mean"] == 0.25, processor.to_dict()
np.savez(sys.argv[3], pinned=logits["zoo:pinned"], at_hub=logits["zoo:pinned@hub"])
"""


def _stage(model, folder: Path) -> Path:
    return stage_model_folder(model, folder, GeoFMImageProcessor(image_mean=0.25))


def test_a_pinned_entry_loads_its_commit_from_the_hub_not_the_moved_branch(tmp_path, tiny_model):
    if not OLAH_CLI.exists():
        pytest.skip(OLAH_MISSING)
    first, second = tiny_model(task="salt"), tiny_model(task="salt")
    with torch.no_grad():
        for parameter in second.parameters():
            parameter.add_(0.5)
    pixel_values = torch.randn(1, 1, 28, 42)
    np.save(tmp_path / "inputs.npy", pixel_values.numpy())
    server = start_olah(tmp_path / "olah")
    try:
        pinned_sha = server.add_repo(_stage(first, tmp_path / "first"), REPO_ID)
        assert server.update_repo(_stage(second, tmp_path / "second"), REPO_ID) != pinned_sha
        entries = tmp_path / "entries"
        entries.mkdir()
        data = {**geofm_hf.zoo.get_entry("salt-tgs").to_dict(), "name": "pinned", "weights": None,
                "hub": {"repo_id": REPO_ID, "revision": pinned_sha}}
        (entries / "pinned.json").write_text(json.dumps(data))
        env = {**os.environ, **NO_PROXY, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0",
               "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HOME": str(tmp_path / "hf-home")}
        client = [sys.executable, "-c", CLIENT, str(entries), str(tmp_path / "inputs.npy"), str(tmp_path / "out.npz")]
        result = subprocess.run(client, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{result.stderr[-3000:]}\nServer log:\n{server.log_tail()}"
    finally:
        server.stop()
    with torch.no_grad():
        expected, moved = (model(pixel_values=pixel_values).logits.numpy() for model in (first, second))
    with np.load(tmp_path / "out.npz") as found:
        np.testing.assert_allclose(found["pinned"], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(found["at_hub"], found["pinned"])
    assert not np.allclose(expected, moved, atol=1e-3)

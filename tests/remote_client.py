"""A user without geofm_hf: loads a saved model folder (or a repo id) with transformers alone.

Run as ``python tests/remote_client.py <request.json>`` in a fresh process. Every import of ``geofm_hf`` is blocked
before anything else is imported, so whatever loads here loads from the code saved next to the weights
(``trust_remote_code=True``). The request names the model (``model``, optional ``revision``), a float section
(``section``: .npy) and a picture (``picture``: .png); the results go to ``out``: ``result.json`` and ``arrays.npz``.
"""

from __future__ import annotations

import importlib.abc
import json
import sys
from pathlib import Path


class BlockGeofmHF(importlib.abc.MetaPathFinder):
    """Makes ``import geofm_hf`` fail as it does where the package is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("geofm_hf", "geofm_hf_cli"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


def run_client(request: dict, workdir: Path, env: dict[str, str]) -> tuple[dict, dict]:
    """Run :func:`load_without_geofm_hf` for ``request`` in a fresh process (geofm_hf blocked); return its findings
    and arrays. ``env`` is added to this process's environment (e.g. the Hub endpoint)."""
    import os
    import subprocess

    import numpy as np

    out = workdir / "client-out"
    out.mkdir()
    (workdir / "request.json").write_text(json.dumps({**request, "out": str(out)}))
    environment = {**os.environ, "HF_HOME": str(workdir / "hf-home"), **env}
    result = subprocess.run(
        [sys.executable, __file__, str(workdir / "request.json")], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out / "arrays.npz") as arrays:
        return json.loads((out / "result.json").read_text()), dict(arrays)


def load_without_geofm_hf(request: dict) -> tuple[dict, dict]:
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation, pipeline

    source = {"pretrained_model_name_or_path": request["model"], "revision": request.get("revision")}
    findings: dict = {}
    try:
        AutoModel.from_pretrained(**source)
        findings["without_trust"] = "loaded"
    except ValueError as error:
        findings["without_trust"] = str(error)
    config = AutoConfig.from_pretrained(**source, trust_remote_code=True)
    processor = AutoImageProcessor.from_pretrained(**source, trust_remote_code=True)
    section = np.load(request["section"])
    arrays = {}
    with torch.no_grad():
        for auto_class in (AutoModel, AutoModelForSemanticSegmentation):
            model = auto_class.from_pretrained(**source, trust_remote_code=True).eval()
            arrays[auto_class.__name__] = model(**processor(section)).logits.numpy()
    masks = pipeline("image-segmentation", model=request["model"], revision=request.get("revision"),
                     trust_remote_code=True)(request["picture"])
    for entry in masks:
        arrays[f"picture_mask_{entry['label']}"] = np.asarray(entry["mask"])
    sections = pipeline("section-segmentation", model=request["model"], revision=request.get("revision"),
                        trust_remote_code=True)
    arrays["section_segmentation"] = sections(section)["segmentation"]
    findings.update(
        config_module=type(config).__module__,
        model_module=type(model).__module__,
        processor_module=type(processor).__module__,
        pipeline_module=type(sections).__module__,
        geofm_hf_loaded=any(name.startswith("geofm_hf") for name in sys.modules),
    )
    return findings, arrays


if __name__ == "__main__":
    sys.meta_path.insert(0, BlockGeofmHF())
    client_request = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = Path(client_request["out"])
    client_findings, client_arrays = load_without_geofm_hf(client_request)
    import numpy

    numpy.savez(out / "arrays.npz", **client_arrays)
    (out / "result.json").write_text(json.dumps(client_findings), encoding="utf-8")

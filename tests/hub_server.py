"""A local Hub-protocol server for the tests, and the user's side of a download by repo id.

Server: olah (installed by ``scripts/setup_olah.sh`` into ``.olah-venv``, its own environment), offline, on
127.0.0.1 only: it never contacts huggingface.co and answers the Hub API and ``resolve`` routes from the git repos
under ``<mirrors>/<models|datasets>/<org>/<name>``. It takes no uploads: repos are published as git commits.

Client: huggingface_hub reads ``HF_ENDPOINT`` once, at import, so loading by repo id runs in a fresh process
(``python tests/hub_server.py <request.json>``, see :func:`run_client`) that does every check in one go.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
OLAH_CLI = REPO_ROOT / ".olah-venv" / "bin" / "olah-cli"
OLAH_MISSING = "olah not installed: run scripts/setup_olah.sh"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.2
LOG_TAIL_CHARS = 4000
# Folder of each repo type under a mirrors path (olah.server_mirror: <mirror>/<repo_type>/<org>/<repo>).
MIRROR_FOLDERS = {"model": "models", "dataset": "datasets"}
# A git that ignores the user's and the system's settings (hooks, signing, templates): commits are reproducible.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "geofm_hf tests",
    "GIT_AUTHOR_EMAIL": "tests@geofm-hf.invalid",
    "GIT_COMMITTER_NAME": "geofm_hf tests",
    "GIT_COMMITTER_EMAIL": "tests@geofm-hf.invalid",
}
# Loopback requests must not go through a proxy that the environment may name.
NO_PROXY = {"NO_PROXY": f"{HOST},localhost", "no_proxy": f"{HOST},localhost"}

CONFIG_TEMPLATE = """\
[basic]
host = {host}
port = {port}
repos-path = {repos}
mirrors-path = [{mirrors}]

[accessibility]
offline = true
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def _commit_all(repo: Path, message: str) -> str:
    """Commit everything in ``repo`` on its current branch; return the new head."""
    _git("add", "--all", cwd=repo)
    _git("commit", "--quiet", "--message", message, cwd=repo)
    return _git("rev-parse", "HEAD", cwd=repo)


@dataclass
class OlahServer:
    """A running olah process and its folders."""

    process: subprocess.Popen
    url: str
    mirrors: Path
    log_path: Path

    def log_tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else "<no log>"
        return text[-LOG_TAIL_CHARS:]

    def add_repo(self, folder: Path, repo_id: str, repo_type: str = "model") -> str:
        """Publish ``folder`` as ``repo_id``: copy it into the mirrors and commit it on ``main``; return the sha."""
        repo = self.mirrors / MIRROR_FOLDERS[repo_type] / repo_id
        if repo.exists():
            raise FileExistsError(f"{repo_type} repo {repo_id} is already published at {repo}")
        shutil.copytree(folder, repo)
        _git("init", "--quiet", "--initial-branch=main", cwd=repo)
        return _commit_all(repo, f"Publish {repo_id}")

    def update_repo(self, folder: Path, repo_id: str, repo_type: str = "model") -> str:
        """Commit ``folder``'s files over the published ``repo_id`` on ``main`` (main moves on); return the sha."""
        repo = self.mirrors / MIRROR_FOLDERS[repo_type] / repo_id
        shutil.copytree(folder, repo, dirs_exist_ok=True)
        return _commit_all(repo, f"Update {repo_id}")

    def answers(self) -> bool:
        """Whether the server answers HTTP (any status: an unknown repo gives 404) on its port."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            opener.open(f"{self.url}/api/models/geofm-probe/none/revision/main", timeout=2).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Terminate the server, killing it if it does not exit within ``STOP_TIMEOUT_S``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


def start_olah(workdir: Path, timeout: float = START_TIMEOUT_S) -> OlahServer:
    """Start olah offline on a free 127.0.0.1 port with empty mirrors under ``workdir``; wait until it answers.

    Raises:
        FileNotFoundError: olah is not installed (``scripts/setup_olah.sh``).
        RuntimeError: the server exited or did not answer within ``timeout`` seconds; the message holds its log.
    """
    if not OLAH_CLI.exists():
        raise FileNotFoundError(f"{OLAH_CLI} is missing; {OLAH_MISSING}")
    port = free_port()
    mirrors, repos, logs = workdir / "mirrors", workdir / "cache", workdir / "logs"
    for folder in (mirrors, repos, logs):
        folder.mkdir(parents=True, exist_ok=True)
    config = workdir / "olah.toml"
    # JSON strings are valid TOML basic strings: paths need no further escaping.
    quoted = {name: json.dumps(str(value)) for name, value in (("host", HOST), ("repos", repos), ("mirrors", mirrors))}
    config.write_text(CONFIG_TEMPLATE.format(port=port, **quoted), encoding="utf-8")
    log_path = logs / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(OLAH_CLI), "--config", str(config), "--log-path", str(logs)],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **NO_PROXY},
        )
    server = OlahServer(process, f"http://{HOST}:{port}", mirrors, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with code {process.returncode} at start.\nLog:\n{server.log_tail()}")
        if server.answers():
            return server
        time.sleep(POLL_INTERVAL_S)
    server.stop()
    raise RuntimeError(f"olah did not answer on {server.url} within {timeout:.0f} s.\nLog:\n{server.log_tail()}")


# --- the user's side: download by repo id, in a fresh process ------------------------------------------------------

ARRAY_COLUMNS = ("image", "label")
PICTURE_COLUMNS = ("image_preview", "label_preview")
CLIENT_TIMEOUT_S = 300
# Settings a parent environment may hold that would make the client offline or send a real token to the server.
CLIENT_ENV_DROPPED = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, keyed by its POSIX path relative to ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def dataset_view(dataset_dict: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A ``DatasetDict`` as numpy arrays (``"<split>/image"``, ``"<split>/label"``) and, as it reads back from JSON,
    the features, the other columns and the digests of the preview pictures of each split.

    Labels come back as int64 (``datasets``' numpy format upcasts uint8); their stored type is in the features.
    """
    import datasets

    arrays, described = {}, {}
    for split, dataset in dataset_dict.items():
        columns = dataset.select_columns(list(ARRAY_COLUMNS)).with_format("numpy")[:]
        for column in ARRAY_COLUMNS:
            arrays[f"{split}/{column}"] = columns[column]
        pictures = dataset.select_columns(list(PICTURE_COLUMNS))
        for column in PICTURE_COLUMNS:
            pictures = pictures.cast_column(column, datasets.Image(decode=False))
        described[split] = {
            "features": dataset.features.to_dict(),
            "rows": dataset.remove_columns([*ARRAY_COLUMNS, *PICTURE_COLUMNS]).to_list(),
            "preview_sha256": [
                {column: hashlib.sha256(row[column]["bytes"]).hexdigest() for column in PICTURE_COLUMNS}
                for row in pictures
            ],
        }
    return arrays, json.loads(json.dumps(described))


def _load_by_repo_id(request: dict[str, Any], out: Path) -> dict[str, Any]:
    import torch
    from datasets import load_dataset
    from huggingface_hub import DatasetCard, ModelCard, snapshot_download
    from peft import PeftModel
    from transformers import AutoImageProcessor, AutoModel, AutoModelForSemanticSegmentation

    import geofm_hf  # noqa: F401  (registers the geofm classes with the Auto classes)

    model_repo, revision, dataset_repo = request["model_repo"], request["model_revision"], request["dataset_repo"]
    pixel_values = torch.from_numpy(np.load(request["inputs"], allow_pickle=False))
    logits = {}
    with torch.no_grad():
        for auto_class in (AutoModel, AutoModelForSemanticSegmentation):
            model = auto_class.from_pretrained(model_repo, revision=revision).eval()
            logits[auto_class.__name__] = model(pixel_values=pixel_values).logits.numpy()
        adapted = PeftModel.from_pretrained(model, model_repo, subfolder="adapter", revision=revision).eval()
        logits["adapter"] = adapted(pixel_values=pixel_values).logits.numpy()
    np.savez(out / "logits.npz", **logits)
    processor = AutoImageProcessor.from_pretrained(model_repo, revision=revision)
    arrays, described = dataset_view(load_dataset(dataset_repo))
    np.savez(out / "dataset.npz", **arrays)
    return {
        "model_class": type(model).__name__,
        "processor_class": type(processor).__name__,
        "processor": processor.to_dict(),
        "model_snapshot": file_digests(Path(snapshot_download(model_repo, revision=revision))),
        "dataset_snapshot": file_digests(Path(snapshot_download(dataset_repo, repo_type="dataset"))),
        "model_card": ModelCard.load(model_repo).data.to_dict(),
        "dataset_card": DatasetCard.load(dataset_repo).data.to_dict(),
        "dataset": described,
    }


def run_client(server: OlahServer, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run the download checks of ``request`` against ``server`` in a fresh process; return what it found.

    The process sees only the local server (``HF_ENDPOINT``), online mode, no token and an empty ``HF_HOME`` under
    ``workdir``; its arrays are in ``workdir/out`` (``logits.npz``, ``dataset.npz``).

    Raises:
        AssertionError: the process failed; the message holds its output and the server's log.
    """
    out, hf_home = workdir / "out", workdir / "hf-home"
    out.mkdir(parents=True)
    request_path = workdir / "request.json"
    request_path.write_text(json.dumps({**request, "out": str(out)}), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key not in CLIENT_ENV_DROPPED}
    env.update(
        NO_PROXY,
        HF_ENDPOINT=server.url,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_IMPLICIT_TOKEN="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(hf_home),
        HF_DATASETS_CACHE=str(hf_home / "datasets"),
    )
    result = subprocess.run(
        [sys.executable, __file__, str(request_path)], env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S
    )
    assert result.returncode == 0, (
        f"Loading by repo id failed (exit code {result.returncode}).\nstderr:\n{result.stderr[-LOG_TAIL_CHARS:]}\n"
        f"Server log:\n{server.log_tail()}"
    )
    return json.loads((out / "result.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    client_request = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    client_out = Path(client_request["out"])
    findings = _load_by_repo_id(client_request, client_out)
    (client_out / "result.json").write_text(json.dumps(findings, default=str), encoding="utf-8")

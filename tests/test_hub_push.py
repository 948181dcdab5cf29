"""Staging (the folder is what an upload sends, written atomically) and pushing (the HfApi calls made, and each
failure turned into a HubPushError that says what to do), without a Hub: HfApi is mocked or talks to a loopback stub."""

import http.server
import json
import threading

import huggingface_hub
import pytest
import torch
from huggingface_hub import CommitInfo, ModelCard, constants
from huggingface_hub.errors import HFValidationError
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

from geofm_hf import GeoFMForSemanticSegmentation, GeoFMImageProcessor
from geofm_hf.hub import HubPushError, push_folder, push_model, stage_model_folder
from hub_server import file_digests, free_port

REPO = "geofm-tests/salt-tiny"


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model(task="salt")


@pytest.fixture
def adapter_dir(tmp_path):
    folder = tmp_path / "adapter-src"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}), encoding="utf-8")
    save_file({"lora_A": torch.ones(2, 3)}, str(folder / "adapter_model.safetensors"))
    return folder


def _leftovers(parent, name):
    return sorted(path.name for path in parent.iterdir() if path.name.startswith(f".{name}."))


# --- staging ------------------------------------------------------------------------------------------------------


def test_staged_model_folder_has_the_hub_layout_and_loads_back(model, tmp_path, adapter_dir):
    processor = GeoFMImageProcessor(normalization="study")
    folder = stage_model_folder(model, tmp_path / "staged", processor, "---\nlicense: mit\n---\n# card\n", adapter_dir)
    staged = set(file_digests(folder))
    assert {name for name in staged if not name.endswith(".py")} == {
        "model.safetensors",
        "config.json",
        "preprocessor_config.json",
        "README.md",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    }
    # The model's code travels with it (remote code), flat beside the weights.
    assert {"modeling_geofm.py", "configuration_geofm.py", "image_processing_geofm.py", "pipeline_geofm.py"} <= staged
    assert file_digests(folder / "adapter") == file_digests(adapter_dir)
    assert (folder / "README.md").read_text(encoding="utf-8") == "---\nlicense: mit\n---\n# card\n"
    pixel_values = torch.randn(1, 1, 20, 30)
    loaded = AutoModelForSemanticSegmentation.from_pretrained(folder).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixel_values=pixel_values).logits, model(pixel_values=pixel_values).logits)
    assert AutoImageProcessor.from_pretrained(folder).normalization == "study"
    assert _leftovers(tmp_path, "staged") == []


def test_defaults_are_a_processor_for_the_models_channels_and_a_card_naming_task_and_labels(model, tmp_path):
    folder = stage_model_folder(model, tmp_path / "staged")
    processor = AutoImageProcessor.from_pretrained(folder)
    assert isinstance(processor, GeoFMImageProcessor)
    assert processor.num_channels == model.config.in_channels
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-segmentation"
    assert "salt" in card.data.tags
    for class_id, name in model.config.id2label.items():
        assert f"{class_id}: {name}" in card.text
    assert not (folder / "adapter").exists()


def test_a_failed_staging_leaves_neither_folder_nor_temp_files(model, tmp_path):
    with pytest.raises(TypeError, match="card must be a huggingface_hub.ModelCard"):
        stage_model_folder(model, tmp_path / "staged", card=42)
    assert not (tmp_path / "staged").exists()
    assert _leftovers(tmp_path, "staged") == []


def test_an_existing_folder_is_kept_unless_overwrite_and_then_replaced_whole(model, tmp_path):
    folder = tmp_path / "staged"
    folder.mkdir()
    (folder / "stale.txt").write_text("old", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not empty; use --overwrite"):
        stage_model_folder(model, folder)
    assert (folder / "stale.txt").exists()
    stage_model_folder(model, folder, overwrite=True)
    assert not (folder / "stale.txt").exists() and (folder / "model.safetensors").is_file()
    assert _leftovers(tmp_path, "staged") == []


def test_a_peft_model_and_an_incomplete_adapter_folder_are_refused(model, tmp_path, adapter_dir):
    peft_model = get_peft_model(GeoFMForSemanticSegmentation(model.config), LoraConfig(target_modules=["q_proj"]))
    with pytest.raises(TypeError, match="merge_and_unload"):
        stage_model_folder(peft_model, tmp_path / "staged")
    (adapter_dir / "adapter_model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="lacks adapter_model.safetensors"):
        stage_model_folder(model, tmp_path / "staged", adapter_dir=adapter_dir)
    assert not (tmp_path / "staged").exists()


# --- pushing: the calls made --------------------------------------------------------------------------------------


@pytest.fixture
def hf_api_calls(monkeypatch):
    """Replace the HfApi methods push_folder uses with recorders; upload_folder returns a fixed commit."""
    calls = []

    def recorder(name, result=None):
        def record(self, *args, **kwargs):
            calls.append((name, self.token, args, kwargs))
            return result

        return record

    commit = CommitInfo(
        commit_url=f"https://huggingface.co/{REPO}/commit/{'c' * 40}",
        commit_message="m",
        commit_description="",
        oid="c" * 40,
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", recorder("create_repo"))
    monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", recorder("create_branch"))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", recorder("upload_folder", commit))
    return calls


def test_push_folder_creates_the_repo_then_uploads_the_folder_and_returns_the_commit(hf_api_calls, dataset_folder):
    commit = push_folder(
        dataset_folder, REPO, repo_type="dataset", token="hf_write", private=True, commit_message="Add salt"
    )
    assert commit.oid == "c" * 40 and commit == f"https://huggingface.co/{REPO}/commit/{'c' * 40}"
    assert hf_api_calls == [
        ("create_repo", "hf_write", (REPO,), {"repo_type": "dataset", "private": True, "exist_ok": True}),
        (
            "upload_folder",
            "hf_write",
            (),
            {
                "folder_path": dataset_folder,
                "repo_id": REPO,
                "repo_type": "dataset",
                "commit_message": "Add salt",
                "revision": None,
            },
        ),
    ]


def test_push_folder_to_a_branch_creates_it_first(hf_api_calls, dataset_folder):
    push_folder(dataset_folder, REPO, repo_type="dataset", token="hf_write", revision="v2")
    names = [name for name, *_ in hf_api_calls]
    assert names == ["create_repo", "create_branch", "upload_folder"]
    assert hf_api_calls[1][3] == {"branch": "v2", "repo_type": "dataset", "exist_ok": True}
    assert hf_api_calls[2][3]["revision"] == "v2"


def test_push_folder_uses_the_saved_token_when_none_is_passed(hf_api_calls, dataset_folder, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    push_folder(dataset_folder, REPO, repo_type="dataset")
    assert {token for _, token, *_ in hf_api_calls} == {"hf_from_env"}


def test_push_model_stages_the_folder_with_a_card_for_the_repo_and_uploads_it(hf_api_calls, model, tmp_path):
    commit = push_model(model, REPO, tmp_path / "staged", token="hf_write")
    assert commit.oid == "c" * 40
    upload = hf_api_calls[-1][3]
    assert upload["folder_path"] == tmp_path / "staged" and upload["repo_type"] == "model"
    assert (tmp_path / "staged" / "model.safetensors").is_file()
    assert f'from_pretrained("{REPO}", trust_remote_code=True)' in (tmp_path / "staged" / "README.md").read_text(encoding="utf-8")


def test_push_folder_refuses_bad_arguments_before_any_call(hf_api_calls, dataset_folder, tmp_path):
    with pytest.raises(ValueError, match="repo_type='space'"):
        push_folder(dataset_folder, REPO, repo_type="space", token="t")
    with pytest.raises(HFValidationError):
        push_folder(dataset_folder, "not a/valid/id", repo_type="dataset", token="t")
    with pytest.raises(FileNotFoundError, match="has no README.md"):
        push_folder(tmp_path, REPO, token="t")
    assert hf_api_calls == []


# --- pushing: failures --------------------------------------------------------------------------------------------


def _assert_says_what_to_do(error: HubPushError, advice: str, folder, repo_type="dataset"):
    message = str(error)
    assert advice in message
    assert f"hf upload {REPO} {folder} . --repo-type {repo_type}" in message


def test_no_token_says_to_log_in_and_calls_nothing(hf_api_calls, dataset_folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert huggingface_hub.get_token() is None  # conftest's temporary HF_HOME holds no saved token
    with pytest.raises(HubPushError) as caught:
        push_folder(dataset_folder, REPO, repo_type="dataset")
    _assert_says_what_to_do(caught.value, "run `hf auth login`, or pass a token (--token)", dataset_folder)
    assert hf_api_calls == []


def test_offline_mode_says_to_unset_it(dataset_folder, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubPushError) as caught:
        push_folder(dataset_folder, REPO, repo_type="dataset", token="hf_write")
    _assert_says_what_to_do(caught.value, "unset HF_HUB_OFFLINE", dataset_folder)
    assert isinstance(caught.value.__cause__, huggingface_hub.errors.OfflineModeIsEnabled)


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's ``status`` and a Hub-style JSON error."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"error": f"stub answer {self.server.status}"}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def hub_stub(monkeypatch):
    """A loopback HTTP server answering a chosen status, set as the Hub endpoint (online mode)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    server.status = 200
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "refused the token (HTTP 401): run `hf auth login` with a write token"),
        (403, f"may not write to {REPO} (HTTP 403)"),
        (400, "the Hub answered HTTP 400: stub answer 400"),
    ],
)
def test_hub_refusals_say_why(hub_stub, dataset_folder, status, advice):
    hub_stub.status = status
    with pytest.raises(HubPushError) as caught:
        push_folder(dataset_folder, REPO, repo_type="dataset", token="hf_write")
    _assert_says_what_to_do(caught.value, advice, dataset_folder)


def test_an_unreachable_hub_says_to_check_the_network(dataset_folder, monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(HubPushError) as caught:
        push_folder(dataset_folder, REPO, repo_type="dataset", token="hf_write")
    _assert_says_what_to_do(caught.value, f"could not reach {endpoint} (ConnectError", dataset_folder)


def test_other_errors_are_not_disguised(hf_api_calls, dataset_folder, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        push_folder(dataset_folder, REPO, repo_type="dataset", token="hf_write")

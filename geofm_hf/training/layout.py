"""The output folder of a training run: every file and folder a run writes, named in one place.

```
training_config.yaml      the config as run
metrics.jsonl             training logs and validation scores, one JSON record per line
checkpoints/step-N/       resumable state (accelerate's save_state + trainer_state.json); the newest are kept
best/                     the best model on validation mIoU: a plain segmenter + processor, loadable with AutoModel;
  README.md               its model card, written from the test evaluation
  validation_results.json its validation scores at the best step
adapter/                  (lora) the best peft adapter and its card; geofm_hf.hub.load_adapter checks its base
base/                     (lora) the model as built before training: the base adapter/ fits (its adapter_config names it)
trainer_state.json        step, best validation score, history, world size, throughput, peak GPU memory
run_results.json          the run's setup and results: the keyword arguments of the model card writer
test/                     `geofm evaluate`'s output for best/ on the test split:
  eval_results.json       the test scores (`geofm_hf.evaluation.evaluate_model`'s dict)
  confusion_matrix.png, example_<row>.png
training_curves.png       loss, learning rates and validation scores against the step
hub/                      (push_to_hub) the repo folder as uploaded: best/ with adapter/
logs/                     (report_to) the experiment trackers' files, e.g. TensorBoard events
```

``run_results.json`` was called ``eval_results.json`` in earlier versions; that name now only means an evaluation's
scores (in ``test/``, and what ``geofm evaluate --output`` writes). :meth:`RunLayout.read_run_results` still reads a
run folder written under the old name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..evaluation.results import EVAL_RESULTS_FILE
from ..hub import MODEL_CARD_FILE
from ..hub.adapters import BASE_SUBFOLDER


@dataclass(frozen=True)
class RunLayout:
    """Paths of everything a training run writes under ``root`` (its ``output_dir``); see the module docstring.

    Example:

    ```python
    >>> layout = RunLayout("outputs/fault-lora")
    >>> AutoModel.from_pretrained(layout.best_dir)
    >>> layout.read_run_results()["test_results"]["mean_iou"]
    ```
    """

    root: Path

    CONFIG_FILE: ClassVar[str] = "training_config.yaml"
    METRICS_FILE: ClassVar[str] = "metrics.jsonl"
    CHECKPOINTS_DIR: ClassVar[str] = "checkpoints"
    CHECKPOINT_PREFIX: ClassVar[str] = "step-"
    BEST_DIR: ClassVar[str] = "best"
    ADAPTER_DIR: ClassVar[str] = "adapter"
    BASE_DIR: ClassVar[str] = BASE_SUBFOLDER
    STATE_FILE: ClassVar[str] = "trainer_state.json"
    RUN_RESULTS_FILE: ClassVar[str] = "run_results.json"
    LEGACY_RUN_RESULTS_FILE: ClassVar[str] = "eval_results.json"
    VALIDATION_RESULTS_FILE: ClassVar[str] = "validation_results.json"
    TEST_DIR: ClassVar[str] = "test"
    CURVES_FILE: ClassVar[str] = "training_curves.png"
    HUB_DIR: ClassVar[str] = "hub"
    TRACKERS_DIR: ClassVar[str] = "logs"

    def __post_init__(self) -> None:
        # Accept any path spelling, as output_dir is a string in configs.
        object.__setattr__(self, "root", Path(self.root))

    # --- files and folders ---

    @property
    def config_file(self) -> Path:
        return self.root / self.CONFIG_FILE

    @property
    def metrics_file(self) -> Path:
        return self.root / self.METRICS_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / self.CHECKPOINTS_DIR

    @property
    def best_dir(self) -> Path:
        return self.root / self.BEST_DIR

    @property
    def model_card_file(self) -> Path:
        return self.best_dir / MODEL_CARD_FILE

    @property
    def best_validation_results_file(self) -> Path:
        return self.best_dir / self.VALIDATION_RESULTS_FILE

    @property
    def adapter_dir(self) -> Path:
        return self.root / self.ADAPTER_DIR

    @property
    def base_dir(self) -> Path:
        return self.root / self.BASE_DIR

    @property
    def state_file(self) -> Path:
        return self.root / self.STATE_FILE

    @property
    def run_results_file(self) -> Path:
        return self.root / self.RUN_RESULTS_FILE

    @property
    def test_dir(self) -> Path:
        return self.root / self.TEST_DIR

    @property
    def test_results_file(self) -> Path:
        return self.test_dir / EVAL_RESULTS_FILE

    @property
    def curves_file(self) -> Path:
        return self.root / self.CURVES_FILE

    @property
    def hub_dir(self) -> Path:
        return self.root / self.HUB_DIR

    @property
    def trackers_dir(self) -> Path:
        return self.root / self.TRACKERS_DIR

    # --- checkpoints ---

    def checkpoint_dir(self, step: int) -> Path:
        """The checkpoint folder of optimiser step ``step``."""
        return self.checkpoints_dir / f"{self.CHECKPOINT_PREFIX}{step}"

    @classmethod
    def checkpoint_state_file(cls, checkpoint: str | os.PathLike) -> Path:
        """The trainer state inside a checkpoint folder (its presence marks the checkpoint complete)."""
        return Path(checkpoint) / cls.STATE_FILE

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints of the run, oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = self.checkpoints_dir.glob(f"{self.CHECKPOINT_PREFIX}*")
        complete = (folder for folder in found if self.checkpoint_state_file(folder).is_file())
        return sorted(complete, key=lambda folder: int(folder.name[len(self.CHECKPOINT_PREFIX) :]))

    # --- helpers ---

    @staticmethod
    def staging_dir(target: Path) -> Path:
        """The hidden sibling a folder is written into before it is swapped in place (``.<name>.tmp``)."""
        return target.with_name(f".{target.name}.tmp")

    def holds_run(self) -> bool:
        """Whether the folder already holds a run's checkpoints or final state."""
        return self.checkpoints_dir.is_dir() or self.state_file.exists()

    def read_run_results(self) -> dict[str, Any] | None:
        """The run's ``run_results.json`` (or its former name, ``eval_results.json``), or None if it has neither."""
        for path in (self.run_results_file, self.root / self.LEGACY_RUN_RESULTS_FILE):
            if path.is_file():
                return json.loads(path.read_text(encoding="utf-8"))
        return None


__all__ = ["RunLayout"]

"""Fine-tuning with Accelerate and PEFT.

* :mod:`.config`: the run's settings; :mod:`.adaptation`: frozen/full/LoRA (or the UNet baseline from scratch) and
  the export of a plain model; :mod:`.data`: datasets to augmented, padded batches;
* :mod:`.setup`: :func:`prepare_run`; :mod:`.loop`: the step loop; :mod:`.validation`: validation and ``best/``;
  :mod:`.checkpoints`: resumable checkpoints; :mod:`.report`: the end of a run (test, results, card, curves, push);
* :mod:`.run`: :func:`train`; :mod:`.state`: what a run carries; :mod:`.layout`: :class:`RunLayout`, the name of
  every output; :mod:`.curves`: the metrics log and its picture. ``geofm train`` is :mod:`geofm_hf.cli.train`.

```python
>>> from geofm_hf.training import load_config, train
>>> result = train(load_config("configs/lora.yaml", {"max_steps": 100}))
>>> result.test_results["mean_iou"]
>>> unet = train(load_config("configs/lora.yaml", {"backbone": "unet", "adaptation": "full", "decoder": None,
...                                                 "max_train_seconds": 600, "output_dir": "outputs/unet"}))
```
"""

from .adaptation import ADAPTATIONS, LORA_TARGET_PRESETS, resolve_lora_targets
from .config import (
    LR_SCHEDULERS,
    TRAIN_TIME_CLOCKS,
    AugmentationSettings,
    LoraSettings,
    TrainingConfig,
    load_config,
)
from .layout import RunLayout
from .run import run_training, train
from .setup import prepare_run
from .state import TrainerState, TrainingResult, TrainingRun
from .validation import evaluate_loader

__all__ = [
    "ADAPTATIONS",
    "LORA_TARGET_PRESETS",
    "LR_SCHEDULERS",
    "TRAIN_TIME_CLOCKS",
    "AugmentationSettings",
    "LoraSettings",
    "RunLayout",
    "TrainerState",
    "TrainingConfig",
    "TrainingResult",
    "TrainingRun",
    "evaluate_loader",
    "load_config",
    "prepare_run",
    "resolve_lora_targets",
    "run_training",
    "train",
]

"""Fine-tuning with Accelerate and PEFT: config, adaptation (frozen/full/LoRA, or the UNet baseline from scratch),
data, the loop and its CLI.

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
from .loop import TrainerState, TrainingResult, evaluate_loader, prepare_run, run_training, train

__all__ = [
    "ADAPTATIONS",
    "LORA_TARGET_PRESETS",
    "LR_SCHEDULERS",
    "TRAIN_TIME_CLOCKS",
    "AugmentationSettings",
    "LoraSettings",
    "TrainerState",
    "TrainingConfig",
    "TrainingResult",
    "evaluate_loader",
    "load_config",
    "prepare_run",
    "resolve_lora_targets",
    "run_training",
    "train",
]

"""Publishing to the Hugging Face Hub: the cards of models and datasets, and staging and uploading their repos.

* :mod:`.constants`: what every published repo shares (card file, tags, licence, adapter layout, commit messages);
* :mod:`.model_card`: the card of a trained model (from its evaluation) and the short default card;
* :mod:`.dataset_card`: the card of a built dataset folder (from its splits' statistics);
* :mod:`.adapters`: a run's LoRA adapter folder (card, base fingerprint) and a loader that checks the base;
* :mod:`.push`: a model repo folder laid out as uploaded, and the upload of any staged folder;
* ``templates/``: the Jinja templates of both card bodies, shipped with the package.
"""

from .constants import (
    ADAPTER_FILES,
    ADAPTER_SUBFOLDER,
    BASE_TAGS,
    CARD_FILE,
    DATASET_CARD_TEMPLATE,
    MODEL_CARD_FILE,
    MODEL_CARD_TEMPLATE,
    MODEL_LICENSE,
    MODEL_TAGS,
)
from .adapters import AdapterInfo, backbone_fingerprint, check_base, load_adapter, save_adapter
from .dataset_card import CardInfo, SplitStatistics, make_dataset_card, split_statistics
from .model_card import default_model_card, eval_results, is_hub_id, write_model_card
from .push import HubPushError, push_folder, push_model, stage_model_folder, upload_command

__all__ = [
    "ADAPTER_FILES",
    "ADAPTER_SUBFOLDER",
    "BASE_TAGS",
    "CARD_FILE",
    "DATASET_CARD_TEMPLATE",
    "MODEL_CARD_FILE",
    "MODEL_CARD_TEMPLATE",
    "MODEL_LICENSE",
    "MODEL_TAGS",
    "AdapterInfo",
    "CardInfo",
    "HubPushError",
    "SplitStatistics",
    "backbone_fingerprint",
    "check_base",
    "default_model_card",
    "eval_results",
    "is_hub_id",
    "load_adapter",
    "make_dataset_card",
    "push_folder",
    "push_model",
    "save_adapter",
    "split_statistics",
    "stage_model_folder",
    "upload_command",
    "write_model_card",
]

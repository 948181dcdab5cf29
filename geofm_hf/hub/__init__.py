"""Publishing to the Hugging Face Hub: the cards of models and datasets, and staging and uploading their repos.

* :mod:`.constants`: what every published repo shares (card file, tags, licence, adapter layout, commit messages);
* :mod:`.model_card`: the card of a trained model (from its evaluation) and the short default card;
* :mod:`.dataset_card`: the card of a built dataset folder (from its splits' statistics);
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
    "CardInfo",
    "HubPushError",
    "SplitStatistics",
    "default_model_card",
    "eval_results",
    "is_hub_id",
    "make_dataset_card",
    "push_folder",
    "push_model",
    "split_statistics",
    "stage_model_folder",
    "upload_command",
    "write_model_card",
]

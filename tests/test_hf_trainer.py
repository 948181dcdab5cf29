"""transformers.Trainer + peft fine-tune a GeoFM model with the two pieces of geofm_hf.training.hf_trainer."""

import math

import pytest
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import Trainer, TrainingArguments

import geofm_hf
from geofm_hf.training import hf_trainer, resolve_lora_targets


def lora_model(tiny_config):
    model = geofm_hf.GeoFMForSemanticSegmentation(tiny_config(decoder="linear"))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=resolve_lora_targets(model, "qv"), modules_to_save=["decoder"])
    return get_peft_model(model, config)


def trainer(model, dataset_folder, tmp_path, remove_unused_columns: bool) -> Trainer:
    splits = load_dataset(str(dataset_folder))
    args = TrainingArguments(
        str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=2, learning_rate=1e-2, logging_steps=1,
        report_to=[], save_strategy="no", remove_unused_columns=remove_unused_columns, use_cpu=True,
    )
    train = splits["train"].with_transform(hf_trainer.section_transform(geofm_hf.GeoFMImageProcessor()))
    return Trainer(model=model, args=args, train_dataset=train, data_collator=hf_trainer.section_collator(model))


@pytest.mark.slow
def test_trainer_with_lora_trains_the_adapter_and_the_decoder(tiny_config, dataset_folder, tmp_path):
    model = lora_model(tiny_config)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    result = trainer(model, dataset_folder, tmp_path, remove_unused_columns=False).train()
    assert result.global_step == 3 and math.isfinite(result.training_loss)
    changed = {name for name, p in model.named_parameters() if p.requires_grad and not p.equal(before[name])}
    assert any("lora_B" in name for name in changed) and any("decoder" in name for name in changed)


@pytest.mark.slow
def test_the_remove_unused_columns_pitfall(tiny_config, dataset_folder, tmp_path):
    with pytest.raises(KeyError, match="image"):
        trainer(lora_model(tiny_config), dataset_folder, tmp_path, remove_unused_columns=True).train()

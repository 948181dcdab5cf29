"""`accelerate launch -m geofm_hf.train` on two CPU processes (gloo): a real distributed run, in a subprocess."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from transformers import AutoModel

import geofm_hf
from geofm_hf.training import RunLayout
from hub_server import free_port


@pytest.mark.slow
def test_two_cpu_processes_train_together(tmp_path, tiny_backbone):
    output = tmp_path / "run"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "task": "fault",
                "dataset": "synthetic:12:0:28",
                "output_dir": str(output),
                "backbone": "random:dinov2-small",
                "backbone_overrides": tiny_backbone,
                # MLA uses every level: DDP fails on parameters that get no gradient, so this checks there are none.
                "decoder": "mla",
                "decoder_kwargs": {"channels": 16},
                "adaptation": "lora",
                "batch_size": 2,
                "max_steps": 2,
                "logging_steps": 1,
            }
        )
    )
    # Without GPUs, Accelerate makes a gloo (MULTI_CPU) group only when told to use the CPU.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "bf16",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "geofm_hf.train",
        "--config",
        str(config),
        "--seed",
        "7",
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    log = completed.stdout + completed.stderr
    assert completed.returncode == 0, log[-4000:]
    assert "distributed_type=DistributedType.MULTI_CPU, num_processes=2" in log
    # The launcher's precision is honoured (the config leaves it unset) and recorded.
    assert "mixed_precision=bf16" in log

    layout = RunLayout(output)
    state = json.loads(layout.state_file.read_text())
    # 8 train sections, 2 per process and step: 2 steps per epoch over both processes.
    assert (state["world_size"], state["global_step"], state["steps_per_epoch"]) == (2, 2, 2)
    results = layout.read_run_results()
    assert results["hyperparameters"]["effective_batch_size"] == 4 and results["hyperparameters"]["seed"] == 7
    assert results["hyperparameters"]["mixed_precision"] == "bf16"
    model = AutoModel.from_pretrained(layout.best_dir)
    assert isinstance(model, geofm_hf.GeoFMForSemanticSegmentation) and model.config.decoder == "mla"

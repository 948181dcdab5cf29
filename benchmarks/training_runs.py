"""Training runs measured one process each, for the benchmark scripts next to this file.

Each run is ``python -m geofm_hf.train --config <file>`` in a child process: the kernel's accounting of that one
child (``os.wait4``) gives its peak resident memory and CPU time alone, and the run's own files give its progress and
scores (``trainer_state.json``, ``run_results.json``: see `geofm_hf.training.RunLayout`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from geofm_hf.io.atomic import write_atomically
from geofm_hf.training.layout import RunLayout

REPO_ROOT = Path(__file__).resolve().parents[1]
# Children must never wait on the Hub: every backbone the benchmarks use is local or random.
CHILD_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
MIB = 2**20


@dataclass
class MeasuredRun:
    """One finished training process.

    Attributes:
        name: the run's name (its config, log and output folder are named after it).
        command: the command line that ran it.
        returncode: exit code of the child (0: trained and tested).
        wall_seconds: elapsed time of the child, start to exit (imports, data, training, evaluation, saving).
        cpu_seconds: user + system CPU time of the child, all threads.
        peak_rss_mib: the child's peak resident memory.
        load_average: the machine's 1-minute load average when the run ended (other jobs share the CPUs).
        state: ``trainer_state.json`` of the run (empty if it failed before writing it).
        results: ``run_results.json`` of the run (None if it failed).
        log: file holding the child's output.
    """

    name: str
    command: list[str]
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    load_average: float
    state: dict[str, Any]
    results: dict[str, Any] | None
    log: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.results is not None


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def run_training_process(
    name: str, config: Mapping[str, Any], work_dir: Path, threads: int | None = None
) -> MeasuredRun:
    """Train ``config`` (a `geofm_hf.training.TrainingConfig` mapping) in a child process and measure it.

    The config is written to ``work_dir/configs/<name>.yaml`` and the child's output to ``work_dir/logs/<name>.log``;
    the run's ``output_dir`` is emptied first, since the benchmark owns it. ``threads`` caps the child's intra-op
    CPU threads (None: torch's default, one per core).
    """
    text = yaml.safe_dump(dict(config), sort_keys=False)
    config_path = write_atomically(
        work_dir / "configs" / f"{name}.yaml", lambda temporary: temporary.write_text(text, encoding="utf-8")
    )
    log = work_dir / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    layout = RunLayout(config["output_dir"])
    shutil.rmtree(layout.root, ignore_errors=True)
    command = [sys.executable, "-m", "geofm_hf.train", "--config", str(config_path)]
    environment = {**os.environ, **CHILD_ENVIRONMENT}
    if threads is not None:
        environment.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=environment)
        # wait4 reports the resources of this child alone (RUSAGE_CHILDREN would mix all runs so far).
        _, status, usage = os.wait4(process.pid, 0)
    wall_seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return MeasuredRun(
        name=name,
        command=command,
        returncode=process.returncode,
        wall_seconds=wall_seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        # Linux reports ru_maxrss in KiB.
        peak_rss_mib=usage.ru_maxrss * 1024 / MIB,
        load_average=os.getloadavg()[0],
        state=_read_json(layout.state_file) or {},
        results=layout.read_run_results(),
        log=log,
    )


def log_tail(run: MeasuredRun, lines: int = 5) -> str:
    """The last lines of a run's log (where a failed run says why)."""
    return "\n".join(run.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; numbers are expected already formatted."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def score(value: float | None, digits: int = 4) -> str:
    """A score to ``digits`` decimals, or a dash for a run without it."""
    return "–" if value is None else f"{value:.{digits}f}"


def write_report(folder: Path, stem: str, markdown: str, records: Any) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``folder``, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(records, indent=2, default=str) + "\n"
    return (
        write_atomically(folder / f"{stem}.md", lambda temporary: temporary.write_text(markdown, encoding="utf-8")),
        write_atomically(folder / f"{stem}.json", lambda temporary: temporary.write_text(text, encoding="utf-8")),
    )

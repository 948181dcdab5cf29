"""Where salt test scores come from, patch by patch: whole-patch decisions on near-all-salt patches, and how far the
split's own sampling moves a score.

mIoU is computed from one confusion matrix summed over the split, so a 101x101 patch that is nearly all salt weighs
10,000 pixels: calling it sediment costs as much as the errors of dozens of ordinary patches. For each model this
prints its mIoU, a 95% bootstrap interval over the split's patches (resampled with replacement), its mIoU with the
near-all-salt patches left out, and which of those it mostly misses (less than half their salt found); with two or
more models, each one's difference to the first with a paired bootstrap interval (the same resampled patches).

    python benchmarks/salt_patch_errors.py DATASET MODEL [MODEL ...] [--split test] [--all-salt 0.9]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from geofm_hf.evaluation import load_model_and_processor, load_split
from geofm_hf.evaluation.inference import LabelledSections, PadCollator, score_batch
from geofm_hf.metrics import segmentation_scores
from geofm_hf.precision import autocast, evaluation_mode, resolve_precision

SALT = 1
RESAMPLES = 2000


@dataclass(frozen=True)
class PatchScores:
    """(patches, 2, 2) confusion matrices of one model's predictions, one per patch of the split."""

    model: str
    confusions: np.ndarray

    def miou(self, rows: np.ndarray | slice = slice(None)) -> float:
        return float(segmentation_scores(self.confusions[rows].sum(axis=0))["mean_iou"])


def patch_confusions(model_name: str, dataset: str, split: str, precision: str) -> PatchScores:
    """Each patch's confusion matrix under the model's argmax, in split order."""
    model, processor = load_model_and_processor(model_name)
    rows = load_split(dataset, split)
    loader = DataLoader(LabelledSections(rows, processor), batch_size=8, collate_fn=PadCollator())
    device = torch.device("cpu")
    confusions = []
    with evaluation_mode(model), autocast(resolve_precision(precision, device), device):
        for batch in loader:
            confusions.append(score_batch(model, batch, model.config.num_labels, model.config.ignore_index).confusions)
    return PatchScores(model_name, torch.cat(confusions).numpy())


def salt_fractions(confusions: np.ndarray) -> np.ndarray:
    """Share of each patch's labelled pixels that are salt (rows of the confusion matrix are the labels)."""
    return confusions[:, SALT, :].sum(axis=1) / confusions.sum(axis=(1, 2))


def mostly_missed(scores: PatchScores, rows: np.ndarray) -> list[int]:
    """Rows among ``rows`` where the model finds less than half the salt."""
    found = scores.confusions[rows, SALT, SALT] / scores.confusions[rows, SALT, :].sum(axis=1)
    return [int(row) for row, share in zip(rows, found, strict=True) if share < 0.5]


def interval(values: list[float]) -> str:
    low, high = np.percentile(values, [2.5, 97.5])
    return f"{low:.4f} to {high:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset folder (Parquet + README), e.g. a zoo entry's built dataset")
    parser.add_argument("models", nargs="+", help="trained model folders or zoo:NAME references")
    parser.add_argument("--split", default="test")
    parser.add_argument("--all-salt", type=float, default=0.9, help="salt share from which a patch is near-all-salt")
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    args = parser.parse_args()

    scores = [patch_confusions(name, args.dataset, args.split, args.precision) for name in args.models]
    fractions = salt_fractions(scores[0].confusions)
    all_salt = np.flatnonzero(fractions >= args.all_salt)
    others = np.flatnonzero(fractions < args.all_salt)
    patches = len(fractions)
    resampled = np.random.default_rng(0).integers(0, patches, size=(RESAMPLES, patches))
    share = scores[0].confusions[all_salt, SALT, :].sum() / scores[0].confusions[:, SALT, :].sum()
    print(f"{patches} patches; {len(all_salt)} near-all-salt (>= {args.all_salt:.0%} salt) hold {share:.1%} of the salt")
    print("| model | mIoU | 95% bootstrap | without near-all-salt | near-all-salt patches mostly missed |")
    print("|---|---:|---|---:|---|")
    for model in scores:
        boot = [model.miou(rows) for rows in resampled]
        missed = mostly_missed(model, all_salt)
        print(f"| {model.model} | {model.miou():.4f} | {interval(boot)} | {model.miou(others):.4f} | {missed} |")
    for model in scores[1:]:
        boot = [model.miou(rows) - scores[0].miou(rows) for rows in resampled]
        difference = model.miou() - scores[0].miou()
        print(f"{model.model} - {scores[0].model}: {difference:+.4f} (paired 95% bootstrap {interval(boot)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

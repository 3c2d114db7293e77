"""Two trained models on the same test images: each one's accuracy, the difference, and its 95%
interval paired over the images (each image scored by both), with McNemar's exact test.

    python scripts/paired_test.py pretrained:resnet20.TAG pretrained:resnet56.TAG \\
        --dataset folder:DIR

A model is anything `reslab eval` takes (a run directory, a weights file, `pretrained:NAME`).
The interval is the sampling error of the test images alone: two models trained once each say
nothing of the spread between training runs (seeds), which adds to it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import torch
from scipy import stats

from reslab.data import DataSplits, DeviceLoader, load_dataset
from reslab.errors import UserError
from reslab.infer.load import LoadedModel, load
from reslab.metrics import EVAL_BATCH
from reslab.metrics.evaluation import predict_logits


@torch.no_grad()
def correct(loaded: LoadedModel, data: DataSplits) -> torch.Tensor:
    """1 for each test image the model gets right (single view), in the data set's order."""
    loader = DeviceLoader(data.test, batch_size=EVAL_BATCH, mean=loaded.data["mean"],
                          std=loaded.data["std"], train=False)  # fmt: skip
    right = [predict_logits(loaded.model, x, False).argmax(1) == y for x, y in loader]
    return torch.cat(right).double()


def both(a: str, b: str, dataset: str | None, data_dir: str | None) -> list[torch.Tensor]:
    """Each model's `correct` on the test split of `dataset` (default: the first model's)."""
    models = [load(a), load(b)]
    first = models[0].config
    data = load_dataset(dataset or first.dataset, data_dir or first.data_dir or None,
                        classes=models[0].classes)  # fmt: skip
    if models[1].classes != models[0].classes:
        raise UserError(f"{b} has other classes than {a}: there is nothing to pair")
    return [correct(m, data) for m in models]


def compare(a: torch.Tensor, b: torch.Tensor) -> dict:
    """b's lead over a, in points, with its paired 95% interval and McNemar's exact p."""
    d, n = b - a, len(a)
    half = stats.t.ppf(0.975, n - 1) * d.std().item() / math.sqrt(n)
    only_a, only_b = int((d < 0).sum()), int((d > 0).sum())
    p = stats.binomtest(only_b, only_a + only_b).pvalue if only_a + only_b else 1.0
    lead = 100 * d.mean().item()
    return {
        "images": n, "acc_a": 100 * a.mean().item(), "acc_b": 100 * b.mean().item(),
        "lead": lead, "interval": [lead - 100 * half, lead + 100 * half],
        "only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": p,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", help="the first model (the baseline)")
    p.add_argument("b", help="the second model")
    p.add_argument("--dataset", help="data set (default: the first model's)")
    p.add_argument("--data-dir", help="where that data set lives")
    args = p.parse_args(argv)
    try:
        a, b = both(args.a, args.b, args.dataset, args.data_dir)
    except UserError as e:
        print(f"paired_test: {e}", file=sys.stderr)
        return 2
    r = compare(a, b)
    print(json.dumps({"a": args.a, "b": args.b, **r}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

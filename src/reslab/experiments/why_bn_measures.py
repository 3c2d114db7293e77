"""What the runs of `why-bn` measure as they train (`probe.py` calls these between steps), and
the per-run numbers its verdicts read from those measurements."""

from __future__ import annotations

import math
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from reslab.experiments.analysis import CHANCE, area
from reslab.experiments.probe import read_probes
from reslab.metrics import (
    Along,
    along,
    covariate_shift,
    input_percentiles,
    percentile_drift,
    weight_layers,
)

STEP_SIZES = (0.25, 0.5, 1.0, 2.0, 4.0)  # the smoothness measurement's steps, times the peak lr
# The smoothness measures: name -> the `Along` property that computes it.
SMOOTH = {
    "loss range": "loss_range",
    "gradient change": "largest_grad_change",
    "effective beta": "beta",
}


# -- what the runs measure as they train ----------------------------------------------------


def _inputs(model: nn.Module, x: torch.Tensor, activation: type) -> list:
    """The 15th/50th/85th percentiles of each unit's input to every `activation` module."""
    modules = [m for m in model.modules() if isinstance(m, activation)]
    return [p.tolist() for p in input_percentiles(model, x, modules)]


def sigmoid_inputs(model, x, y, config) -> dict:
    return {"inputs": _inputs(model, x, nn.Sigmoid)}


def relu_inputs(model, x, y, config) -> dict:
    return {"inputs": _inputs(model, x, nn.ReLU)}


def landscape(model, x, y, config) -> dict:
    """ReLU inputs, each layer's covariate shift, and the loss and gradient down the gradient."""

    def loss(m: nn.Module) -> torch.Tensor:
        return F.cross_entropy(m(x), y)

    shifts = covariate_shift(model, loss, weight_layers(model), config.lr)
    path = along(model, loss, [f * config.lr for f in STEP_SIZES])
    return {
        "inputs": _inputs(model, x, nn.ReLU),
        "shift": [[s.l2, s.cosine] for s in shifts],
        "along": {k: getattr(path, k) for k in Along.__dataclass_fields__},
    }


# -- numbers read from the measurements -----------------------------------------------------


def _tracks(rows: list[dict]) -> list[torch.Tensor]:
    """Per measured layer, its units' percentiles over time: (times, units, 3)."""
    if not rows:
        return []
    return [torch.tensor([r["inputs"][i] for r in rows]) for i in range(len(rows[0]["inputs"]))]


def layer_drifts(rows: list[dict]) -> list[float]:
    """Each measured layer's drift: the mean over its units (`percentile_drift`)."""
    out = []
    for track in _tracks(rows) if len(rows) > 1 else []:
        d = percentile_drift(track)
        d = d[torch.isfinite(d)]
        out.append(float(d.mean()) if len(d) else math.nan)
    return out


def log_drift(result) -> float | None:
    """log10 of the drift averaged over every unit of every measured layer."""
    tracks = _tracks(read_probes(result.record.path))
    if not tracks or len(tracks[0]) < 2:
        return None
    d = torch.cat([percentile_drift(t) for t in tracks])
    d = d[torch.isfinite(d)]
    return math.log10(float(d.mean())) if len(d) and float(d.mean()) > 0 else None


def after_start(result) -> list[dict]:
    return [r for r in read_probes(result.record.path) if r["step"] > 0 and "shift" in r]


def _mean_log(values) -> float | None:
    logs = [math.log10(v) for v in values if v == v and 0 < v < math.inf]
    return statistics.fmean(logs) if logs else None


def shift_l2(result) -> float | None:
    return _mean_log(l2 for r in after_start(result) for l2, _ in r["shift"][1:])


def shift_cosine(result) -> float | None:
    values = [c for r in after_start(result) for _, c in r["shift"][1:] if c == c]
    return statistics.fmean(values) if values else None


def smooth_value(row: dict, name: str) -> float:
    """One measurement's value of a smoothness measure (a key of SMOOTH)."""
    return getattr(Along(**row["along"]), SMOOTH[name])


def smoothness(name: str):
    """The per-run metric of a smoothness measure: log10, averaged over the measurements."""

    def metric(result) -> float | None:
        return _mean_log(smooth_value(r, name) for r in after_start(result))

    return metric


def val_area(result) -> float:
    return area(result, "val_acc", CHANCE)

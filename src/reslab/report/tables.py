"""The zoo's table, as `reslab models` prints it and docs/models.md shows it: one row per
registered model (its costs from costs.json, the error of its shipped weights from their
manifests). The command prints it from cli.json, which `scripts/gen_docs.py` makes from these
rows, so that listing the zoo needs no torch."""

from __future__ import annotations

from reslab.errors import ConfigError
from reslab.models import get_spec, list_models
from reslab.models import pretrained as shipped_weights
from reslab.models.costs import costs

COLUMNS = (
    ("name", "left"),
    ("family", "left"),
    ("params", "right"),
    ("GFLOPs", "right"),
    ("input", "right"),
    ("paper error %", "right"),
    ("reslab error %", "right"),
)


def _reslab_errors() -> dict[str, str]:
    """Each model's shipped default weights: their test error, and on which data."""
    errors = {}
    for w in shipped_weights.shipped().values():
        m = w.manifest
        if m["default"] or m["model"] not in errors:
            errors[m["model"]] = f"{100 * (1 - m['test_acc']):.2f}"
    return errors


def model_rows(pattern: str = "*") -> list[list[str]]:
    names = list_models(pattern)
    if not names:
        raise ConfigError(f"no registered model matches {pattern!r}; try `reslab models` for all")
    ours = _reslab_errors()
    rows = []
    for name in names:
        spec, cost = get_spec(name), costs(name)
        c, h, w = spec.input_size
        err = spec.reference_error
        rows.append(
            [
                name,
                spec.family,
                f"{cost['params']:,}",
                f"{cost['flops'] / 1e9:.3g}",
                f"{c}x{h}x{w}",
                "-" if err is None else f"{err:.2f}",
                ours.get(name, "-"),
            ]
        )
    return rows


FOOTNOTE = (
    "paper error: CIFAR-10 test error as published (ImageNet: torchvision's top-1); reslab "
    "error: reslab's shipped weights on the JPEG copy of CIFAR-10 (docs/pretrained.md)"
)


WEIGHT_COLUMNS = (
    ("weights", "left"),
    ("default", "left"),
    ("test error %", "right"),
    ("test images", "right"),
    ("epochs", "right"),
    ("precision", "left"),
    ("training h", "right"),
    ("recipe", "left"),
)


def weight_rows() -> list[list[str]]:
    """Every shipped weights file, as its manifest records it: what `--pretrained NAME` and
    `create_model(NAME, pretrained=True)` load."""
    rows = []
    for name, w in sorted(shipped_weights.shipped().items()):
        m = w.manifest
        images = m.get("test_images")
        rows.append(
            [
                name,
                "yes" if m["default"] else "",
                f"{100 * (1 - m['test_acc']):.2f}",
                "-" if images is None else f"{images:,}",
                str(m["epochs"]),
                m["config"]["precision"],
                f"{m['wall_time_s'] / 3600:.2f}",
                m["recipe"],
            ]
        )
    return rows


WEIGHT_FOOTNOTE = (
    "test error: on the test split of the data the weights were trained on, read once at the "
    "end of training (docs/pretrained.md); training h: the steps' time, on the machine its "
    "manifest names"
)

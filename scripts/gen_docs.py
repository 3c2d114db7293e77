"""Regenerate the docs' tables from the tables in the code that own the facts.

Each generated table sits between `<!-- generated: NAME -->` and `<!-- end generated -->` in a
docs page. `python scripts/gen_docs.py` rewrites them; `--check` exits 1 when a page is stale
(the test suite runs the check, so a new option cannot land undocumented).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
from pathlib import Path

from reslab.cli import CLI_FILE, describe_commands_json
from reslab.models.costs import COSTS_FILE
from reslab.models.layers import NORMS, SHORTCUTS
from reslab.report.markdown import markdown_table
from reslab.report.tables import COLUMNS, model_rows
from reslab.run.config import FIELDS, HINTS, describe, flag
from reslab.train.recipes import RECIPES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _type_name(kind) -> str:
    return getattr(kind, "__name__", str(kind))


def config_table() -> str:
    rows = []
    for name in FIELDS:
        flags = [flag(name), flag(name, False)] if HINTS[name] is bool else [flag(name)]
        spelled = " / ".join(f"`{f}`" for f in flags)
        rows.append([f"`{name}`", spelled, _type_name(HINTS[name]), describe(name)])
    return markdown_table(["key", "flag", "type", "meaning, allowed values, default"], rows)


def recipes_table() -> str:
    rows = []
    for r in RECIPES.values():
        settings = ", ".join(f"{k}={v}" for k, v in r.overrides.items()) or "the defaults"
        rows.append([f"`{r.name}`", settings, r.source])
    return markdown_table(["name", "settings", "source"], rows)


def shortcuts_table() -> str:
    return markdown_table(
        ["option", "skip path"], [[f"`{k}`", v.help] for k, v in SHORTCUTS.items()]
    )


def zoo_table() -> str:
    """Every registered model, as `reslab models` lists it."""
    return markdown_table([c for c, _ in COLUMNS], model_rows())


# The depth family: ResNet-20/32/44/56 trained with one recipe, length and precision, so that
# depth is the only change (docs/pretrained.md).
DEPTHS = (20, 32, 44, 56)
DEPTH_TAG = "onecycle40_full_c10jpeg"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h ({seconds:,.0f} s)"


def _depth_family() -> list[tuple[int, float, dict | None]]:
    """(depth, the paper's error %, the shipped manifest or None) for each depth."""
    from reslab.models import get_spec, pretrained

    shipped = pretrained.shipped()
    return [
        (d, get_spec(f"resnet{d}").reference_error,
         getattr(shipped.get(f"resnet{d}.{DEPTH_TAG}"), "manifest", None))
        for d in DEPTHS
    ]  # fmt: skip


def _error(m: dict) -> tuple[float, float | None]:
    """Test error in points, and the half-width of its 95% interval from the test images alone
    (binomial; the spread between training seeds is not in it)."""
    p, n = 1 - m["test_acc"], m.get("test_images")
    return 100 * p, (196 * math.sqrt(p * (1 - p) / n) if n else None)


def depth_table() -> str:
    """The shipped weights of the depth family, as their manifests record them, and what they
    say about depth."""
    from reslab.models.costs import costs

    rows = []
    for depth, paper, m in _depth_family():
        name, cost = f"resnet{depth}", costs(f"resnet{depth}")
        trained = ["not trained yet", "-", "-", "-", "-"]
        if m:
            err, half = _error(m)
            trained = [
                f"{err:.2f}" + (f" ± {half:.2f}" if half else "") + f" ({100 - err:.2f}% accuracy)",
                str(m["epochs"]),
                m["config"]["precision"],
                _hours(m["wall_time_s"]),
                m["device"],
            ]
        rows.append([f"`{name}.{DEPTH_TAG}`", f"{paper:.2f}", trained[0], f"{cost['params']:,}",
                     f"{cost['flops'] / 1e9:.3g}", *trained[1:]])  # fmt: skip
    columns = ["weights", "paper error % (original pixels)",
               "reslab error % (JPEG copy, 95% interval)", "params", "GFLOPs", "epochs",
               "precision", "training time", "machine"]  # fmt: skip
    return markdown_table(columns, rows) + "\n\n" + depth_verdict()


# The family's targets, fixed before its runs: no deeper model worse than a
# shallower one by more than this many points ...
WORSE_BY_AT_MOST = 0.3
# ... and ResNet-56 at least this accurate, and this many points above ResNet-20.
RESNET56_AT_LEAST, RESNET56_GAIN = 89.0, 1.0


def depth_verdict() -> str:
    """Whether error falls with depth on this data, in words, from the manifests alone."""
    done = [(d, _error(m)[0]) for d, _, m in _depth_family() if m]
    if len(done) < 2:
        return "Whether error falls with depth: not known yet (fewer than two depths trained)."
    pairs = [(a, b, eb - ea) for (a, ea), (b, eb) in itertools.combinations(done, 2)]
    rises = [(a, b, gap) for a, b, gap in pairs if gap > 0]
    step = " -> ".join(f"{e:.2f}" for _, e in done)
    names = "/".join(str(d) for d, _ in done)
    so_far = (
        f" (so far: {len(done)} of {len(DEPTHS)} depths trained)" if len(done) < len(DEPTHS) else ""
    )
    if not rises:
        lines = [f"Error falls with depth on this data{so_far}: {step}% for ResNet-{names}."]
    else:
        worst = max(rises, key=lambda r: r[2])
        lines = [
            f"Error does not fall with every added depth on this data{so_far}: {step}% for "
            f"ResNet-{names}; {len(rises)} of {len(pairs)} deeper-than pairs are worse, the most "
            f"ResNet-{worst[1]} against ResNet-{worst[0]}, by {worst[2]:.2f} points."
        ]
    over = [r for r in rises if r[2] > WORSE_BY_AT_MOST]
    lines.append(
        f"Target, no deeper model worse by more than {WORSE_BY_AT_MOST} points: "
        + ("met." if not over else "missed by " + ", ".join(
            f"ResNet-{b} vs {a} ({gap - WORSE_BY_AT_MOST:.2f} over)" for a, b, gap in over) + ".")
    )  # fmt: skip
    errors = dict(done)
    if 56 in errors:
        acc = 100 - errors[56]
        lines.append(
            f"Target, ResNet-56 at least {RESNET56_AT_LEAST}% accurate: {acc:.2f}%, "
            + ("met." if acc >= RESNET56_AT_LEAST else f"missed by {RESNET56_AT_LEAST - acc:.2f}.")
        )
        if 20 in errors:
            gain = errors[20] - errors[56]
            lines.append(
                f"Target, ResNet-56 at least {RESNET56_GAIN} point above ResNet-20: "
                f"{gain:+.2f}, "
                + (
                    "met." if gain >= RESNET56_GAIN else f"missed by {RESNET56_GAIN - gain:.2f}."
                )  # fmt: skip
            )
    return "\n".join(f"- {line}" for line in lines)


def depth_figure(path: Path) -> bool:
    """Error against depth, the paper's and reslab's; False (nothing drawn) before any depth
    is trained."""
    from reslab.report.curves import pyplot, save_figure

    family = _depth_family()
    done = [(d, *_error(m)) for d, _, m in family if m]
    if not done:
        return False
    fig, ax = pyplot().subplots(figsize=(5, 3.4))
    ax.plot([d for d, *_ in family], [p for _, p, _ in family], "s--", color="0.45",
            label="paper (original pixels, 64k steps)")  # fmt: skip
    ax.errorbar([d for d, *_ in done], [e for _, e, _ in done],
                yerr=[h or 0 for *_, h in done], fmt="o-", capsize=3, color="C0",
                label=f"reslab (JPEG copy, {DEPTH_TAG.split('_')[0]})")  # fmt: skip
    ax.set(xlabel="depth (layers)", ylabel="test error % (CIFAR-10)", xticks=list(DEPTHS),
           title="Error against depth, ResNet-20/32/44/56")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def norms_table() -> str:
    rows = [[f"`{k}`", v.help, "yes" if v.layer1d else "no"] for k, v in NORMS.items()]
    return markdown_table(["value", "layer", "has a 1-d form"], rows)


TABLES = {
    "training.md": {"config": config_table, "recipes": recipes_table},
    "models.md": {"zoo": zoo_table, "shortcuts": shortcuts_table, "norms": norms_table},
    "pretrained.md": {"depth": depth_table},
}


def render(text: str, tables: dict) -> str:
    for name, make in tables.items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n).*?(<!-- end generated -->)", flags=re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"no '<!-- generated: {name} -->' block to fill")
        table = make()
        text = pattern.sub(lambda m, table=table: m.group(1) + table + "\n" + m.group(2), text)
    return text


def costs_json() -> str:
    from reslab.models import list_models
    from reslab.models.costs import measure

    return json.dumps({name: measure(name) for name in list_models()}, indent=1) + "\n"


# Figures drawn from the same facts (not checked: a PNG is not compared byte for byte).
FIGURES = {DOCS / "figures" / "depth.png": depth_figure}

# Files written whole: path -> content maker. cli.json after costs.json, whose figures it shows.
FILES = {COSTS_FILE: costs_json, CLI_FILE: describe_commands_json}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a page is out of date")
    args = parser.parse_args(argv)
    stale = []
    for page, tables in TABLES.items():
        path = DOCS / page
        old = path.read_text()
        new = render(old, tables)
        if new != old:
            stale.append(page)
            if not args.check:
                path.write_text(new)
    for path, draw in FIGURES.items() if not args.check else ():
        draw(path)
    for path, make in FILES.items() if not args.check else ():  # tests check these themselves
        new = make()
        if not path.is_file() or path.read_text() != new:
            stale.append(path.name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/gen_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

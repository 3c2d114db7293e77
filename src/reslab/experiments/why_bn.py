"""Why BatchNorm works, the two stories measured side by side. The covariate-shift story (Ioffe
& Szegedy 2015, arXiv:1502.03167): BN keeps each layer's input distribution steady as the
layers below it train, and so the network trains faster. The smoothness story (Santurkar,
Tsipras, Ilyas & Madry 2018, arXiv:1805.11604): BN trains as well with covariate shift injected
on purpose, does not reduce covariate shift as they measure it, and makes the loss landscape
smoother. Two grids: the BN paper's fully connected sigmoid net on 28x28 images (Fashion-MNIST,
and MNIST where its files are found), and a narrow VGG on CIFAR-10 with BN, BN followed by
injected noise ("noisy BN") and no norm; every run is measured as it trains (`probe.py`)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from reslab.data import default_data_dir
from reslab.data.torchvision_sets import find_idx_files
from reslab.experiments.analysis import (
    AT_LEAST,
    BETTER,
    CHANCE,
    INCONCLUSIVE,
    MATCHES,
    Fit,
    Interval,
    Protocol,
    accuracy_on_test,
    all_of,
    cells,
    final,
    fmt,
    hours,
    mean_std,
    parts,
    trained,
    why_open,
)
from reslab.experiments.plots import bands_figure, curves_figure, figures_dir, val_acc_figure
from reslab.experiments.probe import ProbeSpec, read_probes
from reslab.experiments.spec import Budget, Experiment, RunSpec
from reslab.experiments.why_bn_measures import (
    SMOOTH,
    STEP_SIZES,
    after_start,
    landscape,
    layer_drifts,
    log_drift,
    relu_inputs,
    shift_cosine,
    shift_l2,
    sigmoid_inputs,
    smooth_value,
    smoothness,
    val_area,
)
from reslab.models.layers import NOISE_SHIFT, NOISE_SPREAD
from reslab.report.experiment import Section

MLP, CNN = "mlp3_sigmoid", "vgg11_w8"
BN, NOISY, NONE = "batchnorm", "batchnorm-noisy", "none"
DIGITS = ("fashion-mnist", "mnist")  # the 28x28 sets of the fully connected runs, where found
# The BN paper's fully connected runs: 50k steps of 60 images (Sec. 4.1); fewer at quick.
MLP_STEPS = {"quick": 5_000}
PAPER_STEPS = 50_000
MLP_SEEDS = 5  # cheap runs, so the claim gets more seeds than the budget's
MLP_SETTINGS = dict(
    model=MLP,
    optimizer="sgd",
    lr=0.5,
    momentum=0.0,
    weight_decay=0.0,
    batch_size=60,
    schedule="constant",
    warmup_epochs=0,
    crop_padding=0,
    flip=False,
    val_split=5000,
    epochs=0,
    threads=1,  # steps this small only lose time to a second thread
)
CNN_SETTINGS = dict(model=CNN, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4)
MLP_LR = "no choice: plain SGD at 0.5 (no momentum, no weight decay) for both arms"
CNN_LR = "no choice: SGD at 0.05 with momentum 0.9 for every arm"
FACTOR = math.log10(1.5)  # the smallest ratio that counts, in log10
IN_FACTORS = "a factor of 1.5 (0.18 in log10)"
SHOWN_UNIT = 0  # the unit whose percentiles are drawn, as the BN paper draws one sigmoid's
SHOWN_LAYERS = (3, 7)  # the VGG layers whose inputs are drawn (Santurkar et al., Fig. 2)
# What the runs measure as they train, and how often (`probe.py`).
MLP_PROBE = ProbeSpec(sigmoid_inputs, points=50, images=1000)
CNN_PROBES = {BN: landscape, NOISY: relu_inputs, NONE: landscape}
CNN_POINTS = 20
MEASURED = (
    f"measured at the run's start and at {CNN_POINTS} evenly spaced steps, on a batch of its "
    "own training images, in training mode"
)

STABLE = Protocol(
    metric="the drift of the sigmoids' inputs: for each hidden unit, the path length of its "
    f"15th, 50th and 85th percentiles (on {MLP_PROBE.images:,} of the run's training images, in "
    f"training mode, at its start and {MLP_PROBE.points} evenly spaced steps), in units of its "
    "spread (85th minus 15th, averaged over time), averaged over the units of the three hidden "
    "layers; log10, no BN minus BN",
    test=BETTER,
    margin=FACTOR,
    margin_words=IN_FACTORS,
    lrs=MLP_LR,
    seeds=MLP_SEEDS,
)
FASTER = Protocol(
    metric="the area under the validation-accuracy curve (its mean over the evaluations at "
    "each epoch's end), BN minus no BN",
    test=BETTER,
    margin=0.01,
    lrs=MLP_LR,
    seeds=MLP_SEEDS,
)
NOISY_MATCHES = Protocol(
    metric="the area under the validation-accuracy curve, noisy BN minus BN; the claim says "
    "'about as well', so 2 points count as about",
    test=MATCHES,
    margin=0.02,
    lrs=CNN_LR,
)
NOISY_BEATS = Protocol(
    metric="the area under the validation-accuracy curve, noisy BN minus no norm",
    test=BETTER,
    margin=0.01,
    lrs=CNN_LR,
)
NOISY_MOVES = Protocol(
    metric="the drift of the ReLUs' inputs (as for the sigmoids, per channel, over the batch "
    f"and its positions, {MEASURED}, the noise drawn), averaged over the channels of the 8 "
    "layers; log10, noisy BN minus no norm",
    test=BETTER,
    margin=FACTOR,
    margin_words=IN_FACTORS,
    lrs=CNN_LR,
)
SHIFT_L2 = Protocol(
    metric="log10 of ||G - G'||, a layer's gradient before and after the layers below it take "
    "their gradient step (of the peak learning rate, on the same batch), averaged over the 8 "
    f"layers above the first and the measurements after the start ({MEASURED}); BN minus no "
    "norm",
    test=AT_LEAST,
    margin=FACTOR,
    margin_words=IN_FACTORS,
    lrs=CNN_LR,
)
SHIFT_COSINE = Protocol(
    metric="cos(G, G'), averaged likewise; no norm minus BN (a lower cosine is a larger shift)",
    test=AT_LEAST,
    margin=0.05,
    margin_words="0.05 of cosine",
    lrs=CNN_LR,
)
SMOOTH_WORDS = {  # the keys of SMOOTH, in words
    "loss range": "the range of the loss over steps down the gradient",
    "gradient change": "the largest l2 change of the gradient over those steps",
    "effective beta": "the largest gradient change per unit of distance moved",
}
STEPS = f"steps of {STEP_SIZES[0]:g} to {STEP_SIZES[-1]:g} times the peak learning rate"
SMOOTHER = {
    name: Protocol(
        metric=f"log10 of {what} ({STEPS}, {MEASURED}), "
        "averaged over the measurements after the start; no norm minus BN",
        test=BETTER,
        margin=FACTOR,
        margin_words=IN_FACTORS,
        lrs=CNN_LR,
    )
    for name, what in SMOOTH_WORDS.items()
}


def digit_sets(data_dir: str) -> list[str]:
    """The 28x28 sets whose IDX files lie under `data_dir`. MNIST and Fashion-MNIST files have
    the same names: files found for both at one place are taken as Fashion-MNIST's."""
    where = Path(data_dir).expanduser() if data_dir else default_data_dir()
    found = {name: find_idx_files(name, where) for name in DIGITS}
    fashion, mnist = found["fashion-mnist"], found["mnist"]
    return [
        n
        for n, files in (("fashion-mnist", fashion), ("mnist", mnist))
        if files and (n == "fashion-mnist" or files != fashion)
    ]


def runs(budget: Budget) -> list[RunSpec]:
    steps = MLP_STEPS.get(budget.name, PAPER_STEPS)
    specs = [
        RunSpec(
            f"mlp-{data}-{norm}",
            {**MLP_SETTINGS, "dataset": data, "norm": norm, "max_steps": steps},
            dict(part="mlp", data=data, norm=norm),
            MLP_PROBE,
            seeds=MLP_SEEDS,
        )
        for data in digit_sets(str(budget.overrides.get("data_dir", "")))
        for norm in (BN, NONE)
    ]
    specs += [
        RunSpec(
            f"vgg-{norm}",
            {**CNN_SETTINGS, "norm": norm},
            dict(part="cnn", norm=norm),
            ProbeSpec(measure, points=CNN_POINTS),
        )
        for norm, measure in CNN_PROBES.items()
    ]
    return specs


# -- verdicts -------------------------------------------------------------------------------


def _fit(arms: dict[str, list], metric) -> Fit:
    """`metric` over the arms' runs, paired by seed; accuracy's spread from the runs that
    trained (runs stuck at chance have none to speak of)."""
    working = {a: [r for r in rs if trained(r, CHANCE)] for a, rs in arms.items()}
    return Fit(cells(arms, metric), noise=Fit(cells(working, metric)))


def _decide(judged: list[tuple[str, Protocol, Interval]], arms: dict[str, list]) -> tuple:
    """The verdict on a claim of parts (name, protocol, lead), each part's text, and what would
    decide the first part left open."""
    verdicts = parts([(p, iv) for _, p, iv in judged])
    seeds = max((len(v) for v in arms.values()), default=0)
    texts, why = [], ""
    for (name, p, iv), v in zip(judged, verdicts, strict=True):
        scale, unit = (100, " points") if _in_points(p) else (1, "")
        texts.append(f"{name}: {iv.text(scale, unit)}, {v}")
        if v == INCONCLUSIVE and not why:
            spent = hours(r for rs in arms.values() for r in rs)
            why = f" Open: {name}.{why_open(p, iv, seeds, spent)}"
    return all_of(*verdicts), "; ".join(texts) + ".", why


def _none_run(title: str, claim: str, reason: str) -> Section:
    return Section(title, claim, INCONCLUSIVE, f"Not measured: {reason}.")


def _in_points(p: Protocol) -> bool:
    """Whether the protocol's metric is accuracy (shown in points), not a log ratio or cosine."""
    return not p.margin_words


def _summary(runs: list, metric, pct: bool = True) -> str:
    return fmt(*mean_std(metric(r) for r in runs), pct=pct, digits=1 if pct else 2)


def _band(result, layer: int, unit: int = SHOWN_UNIT):
    rows = read_probes(result.record.path)
    q = [r["inputs"][layer][unit] for r in rows]
    return [r["step"] for r in rows], *([v[i] for v in q] for i in range(3))


def _mlp_figures(arms: dict, data: str, figures: Path) -> tuple[list, list]:
    bands = {"no BN": [_band(r, -1) for r in arms[NONE]], "BN": [_band(r, -1) for r in arms[BN]]}
    paths = [
        bands_figure(
            bands,
            figures / f"mlp_inputs_{data}.png",
            f"{data}: one last-hidden-layer sigmoid's input, 15th/50th/85th percentiles",
            "sigmoid input",
        ),
        val_acc_figure(
            {"BN": arms[BN], "no BN": arms[NONE]},
            figures / f"mlp_val_{data}.png",
            f"{data}: 3x100 sigmoid net",
        ),
    ]
    captions = [
        f"{data}: the 15th-85th percentile band (shaded) and median of unit {SHOWN_UNIT} of the "
        "last hidden layer's sigmoid input over training, each seed (Ioffe & Szegedy Fig. 1b, c)",
        f"{data}: validation accuracy against steps, each seed (Ioffe & Szegedy Fig. 1a)",
    ]
    return paths, captions


def _ioffe(results, figures: Path) -> Section:
    title = "With BN, a layer's input distribution stays steady and the network trains faster"
    claim = (
        "As the layers below train, the distribution of each layer's input moves (internal "
        "covariate shift); BN holds it steady, and the network trains faster (Ioffe & Szegedy "
        "2015, Sec. 2 and Fig. 1: MNIST, 3 hidden layers of 100 sigmoids, batches of 60). Here "
        "on Fashion-MNIST, and on MNIST where its files are found. The claim must hold on each "
        f"data set. {STABLE.text()} {FASTER.text()}"
    )
    sets = [d for d in DIGITS if results.select(part="mlp", data=d)]
    if not sets:
        return _none_run(
            title,
            claim,
            "no Fashion-MNIST or MNIST IDX files were found in the "
            "data directory; pass --data-dir DIR with them to run this claim",
        )
    verdicts, evidence, section = [], [], Section(title, claim, "", "")
    for data in sets:
        arms = {norm: results.select(part="mlp", data=data, norm=norm) for norm in (BN, NONE)}
        judged = [
            ("drift, no BN minus BN (log10)", STABLE, _fit(arms, log_drift).gap(NONE, BN)),
            ("area, BN minus no BN", FASTER, _fit(arms, val_area).gap(BN, NONE)),
        ]
        decided, text, why = _decide(judged, arms)
        verdicts.append(decided)
        evidence.append(f"{data}: {text}{why}")
        paths, captions = _mlp_figures(arms, data, figures)
        section.figures += paths
        section.captions += captions
        section.rows += [
            [
                data,
                label,
                *_layer_cells(arms[norm], 3),
                _summary(arms[norm], val_area),
                _summary(arms[norm], accuracy_on_test),
            ]
            for norm, label in ((BN, "BN"), (NONE, "no BN"))
        ]
    section.verdict, section.evidence = all_of(*verdicts), " ".join(evidence)
    section.headers = [
        "data",
        "norm",
        "drift, layer 1",
        "layer 2",
        "layer 3",
        "area under val curve",
        "final test acc",
    ]
    return section


def _layer_cells(runs: list, layers: int) -> list[str]:
    """Each of the first `layers` measured layers' drift, mean ± std over the runs."""
    per_run = [layer_drifts(read_probes(r.record.path)) for r in runs]
    return [
        fmt(*mean_std(d[i] for d in per_run if len(d) > i), pct=False, digits=2)
        for i in range(layers)
    ]


CNN_LABELS = {BN: "BN", NOISY: "noisy BN", NONE: "no norm"}


def _cnn_arms(results, norms=tuple(CNN_PROBES)) -> dict[str, list]:
    return {CNN_LABELS[n]: results.select(part="cnn", norm=n) for n in norms}


def _noisy_figures(arms: dict, figures: Path) -> tuple[list, list]:
    paths = [val_acc_figure(arms, figures / "vgg_val.png", f"{CNN}: BN, noisy BN, no norm")]
    captions = ["validation accuracy against steps, each seed (Santurkar et al. Fig. 2, left)"]
    for layer in SHOWN_LAYERS:
        bands = {label: [_band(r, layer - 1) for r in rs] for label, rs in arms.items()}
        paths.append(
            bands_figure(
                bands,
                figures / f"vgg_inputs_layer{layer}.png",
                f"layer {layer}: one channel's ReLU input, 15th/50th/85th percentiles",
                "ReLU input",
            )
        )
        captions.append(
            f"the input of channel {SHOWN_UNIT} of layer {layer}'s ReLU over "
            "training, each seed (Santurkar et al. Fig. 2, right)"
        )
    drifts = {
        label: [
            (list(range(1, len(d) + 1)), d)
            for d in (layer_drifts(read_probes(r.record.path)) for r in rs)
        ]
        for label, rs in arms.items()
    }
    panel = {"drift of each layer's input": drifts}
    paths.append(
        curves_figure(
            panel,
            figures / "vgg_drift.png",
            "how far each layer's input moved over training",
            "layer (input -> output)",
            {"drift of each layer's input": "percentile path / spread"},
            log=panel,
        )
    )
    captions.append("the drift of each layer's ReLU input, mean over its channels, each run")
    return paths, captions


def _santurkar_noise(results, figures: Path) -> Section:
    arms = _cnn_arms(results)
    area_fit, drift_fit = _fit(arms, val_area), _fit(arms, log_drift)
    judged = [
        ("area, noisy BN minus BN", NOISY_MATCHES, area_fit.gap("noisy BN", "BN")),
        ("area, noisy BN minus no norm", NOISY_BEATS, area_fit.gap("noisy BN", "no norm")),
        (
            "drift, noisy BN minus no norm (log10)",
            NOISY_MOVES,
            drift_fit.gap("noisy BN", "no norm"),
        ),
    ]
    decided, text, why = _decide(judged, arms)
    paths, captions = _noisy_figures(arms, figures)
    return Section(
        "Noisy BN trains about as well as BN, though its layers' inputs move more",
        "If BN worked by holding layer inputs steady, injecting covariate shift after every BN "
        "layer should undo it. Santurkar et al. (2018, Sec. 2.1, Fig. 2; VGG on CIFAR-10) add "
        "noise with a random mean and variance, changing at every step, after each BN layer: "
        "the noisy network trains about as well as with plain BN and better than without BN, "
        "although its layers' input distributions move more than without BN. Noise here "
        f"(`{NOISY}`): per channel, a scale from U({1 - NOISE_SPREAD:g}, {1 + NOISE_SPREAD:g}) "
        f"and a shift from U({-NOISE_SHIFT:g}, {NOISE_SHIFT:g}), redrawn at every step, the "
        "same for every image of the batch (the paper draws it per image too). "
        f"{NOISY_MATCHES.text()} {NOISY_BEATS.text()} "
        f"{NOISY_MOVES.text()}",
        decided,
        f"{text} The {area_fit.spread()}.{why}",
        figures=paths,
        captions=captions,
        headers=[
            "norm",
            "area under val curve",
            "final val acc",
            "final test acc",
            "drift (all layers, log10)",
        ],
        rows=[
            [
                label,
                _summary(rs, val_area),
                _summary(rs, lambda r: final(r.record, "val_acc")),
                _summary(rs, accuracy_on_test),
                _summary(rs, log_drift, pct=False),
            ]
            for label, rs in arms.items()
        ],
    )


def _per_layer(result, column: int) -> tuple[list, list]:
    """A run's covariate shift per layer (column 0: l2, 1: cosine), averaged over time as the
    verdict averages it: the l2 distance in log10 (a geometric mean; a few large steps would
    outweigh the rest in a plain mean), the cosine as it is."""
    rows = after_start(result)
    if not rows:
        return [], []
    values = [[r["shift"][i][column] for r in rows] for i in range(len(rows[0]["shift"]))]
    means = [_time_mean(col, log=column == 0) for col in values]
    return list(range(2, len(means) + 1)), means[1:]  # the first layer has nothing below it


def _time_mean(values: list[float], log: bool) -> float:
    kept = [v for v in values if v == v and (not log or 0 < v < math.inf)]
    if not kept:
        return math.nan
    return 10 ** statistics.fmean(map(math.log10, kept)) if log else statistics.fmean(kept)


def _santurkar_shift(results, figures: Path) -> Section:
    arms = _cnn_arms(results, (BN, NONE))
    l2_fit, cos_fit = _fit(arms, shift_l2), _fit(arms, shift_cosine)
    judged = [
        ("||G - G'||, BN minus no norm (log10)", SHIFT_L2, l2_fit.gap("BN", "no norm")),
        ("cosine, no norm minus BN", SHIFT_COSINE, cos_fit.gap("no norm", "BN")),
    ]
    decided, text, why = _decide(judged, arms)
    larger = "yes" if judged[0][2].low > 0 and judged[1][2].low > 0 else "no"
    panels = {
        name: {label: [_per_layer(r, col) for r in rs] for label, rs in arms.items()}
        for name, col in (("||G - G'||", 0), ("cos(G, G')", 1))
    }
    path = curves_figure(
        panels,
        figures / "covariate_shift.png",
        "covariate shift per layer, averaged over training",
        "layer (input -> output)",
        {"||G - G'||": "l2 distance", "cos(G, G')": "cosine"},
        log={"||G - G'||"},
    )
    return Section(
        "BN does not reduce internal covariate shift as Santurkar et al. measure it",
        "Santurkar et al. (2018, Sec. 2.2, Fig. 5) define a layer's internal covariate shift as "
        "the change of its gradient when the layers below it are updated first: G, the "
        "gradient of the layer's weight, against G', the same gradient after the layers below "
        "took their step. BN does not reduce it, and can even increase it. "
        f"{SHIFT_L2.text()} {SHIFT_COSINE.text()}",
        decided,
        f"{text} Larger with BN on both measures (both intervals above 0): {larger}.{why}",
        figures=[path],
        captions=[
            "||G - G'|| and cos(G, G') of each layer above the first (which has nothing below "
            "it), each run's mean over its measurements after the start (for ||G - G'|| the "
            "geometric mean, as the verdict reads it in log10)"
        ],
        headers=["norm", "log10 ||G - G'||", "cos(G, G')"],
        rows=[
            [label, _summary(rs, shift_l2, pct=False), _summary(rs, shift_cosine, pct=False)]
            for label, rs in arms.items()
        ],
    )


def _over_time(result, name: str) -> tuple[list, list]:
    rows = after_start(result)
    return [r["step"] for r in rows], [smooth_value(r, name) for r in rows]


def _santurkar_smooth(results, figures: Path) -> Section:
    arms = _cnn_arms(results, (BN, NONE))
    fits = {name: _fit(arms, smoothness(name)) for name in SMOOTH}
    judged = [
        (f"{name}, no norm minus BN (log10)", SMOOTHER[name], fits[name].gap("no norm", "BN"))
        for name in SMOOTH
    ]
    decided, text, why = _decide(judged, arms)
    panels = {
        name: {label: [_over_time(r, name) for r in rs] for label, rs in arms.items()}
        for name in SMOOTH
    }
    path = curves_figure(
        panels,
        figures / "smoothness.png",
        "the landscape down the gradient",
        "optimizer step",
        {n: n for n in SMOOTH},
        log=panels,
    )
    protocols = " ".join(f"{name}: {p.text()}" for name, p in SMOOTHER.items())
    return Section(
        "BN makes the loss landscape smoother",
        "Along the training trajectory, step down the gradient by a range of step sizes: with "
        "BN the loss varies less (loss landscape), the gradient changes less (gradient "
        "predictiveness), and the largest change of the gradient per unit of distance, an "
        "effective beta-smoothness, is smaller (Santurkar et al. 2018, Sec. 3.1, Fig. 4). "
        f"{protocols}",
        decided,
        f"{text}{why}",
        figures=[path],
        captions=["the three measures at each measurement after the start, each run"],
        headers=["norm", *(f"log10 {name}" for name in SMOOTH)],
        rows=[
            [label, *(_summary(rs, smoothness(n), pct=False) for n in SMOOTH)]
            for label, rs in arms.items()
        ],
    )


def _lesson(sections: list[Section]) -> Section:
    """What the verdicts add up to, in words a learner can read without the papers."""
    ioffe, noise, shift, smooth = (s.verdict for s in sections)
    return Section(
        "What this shows",
        "",
        "",
        "Two stories explain why BatchNorm helps. The first, from the paper that introduced it "
        "(Ioffe & Szegedy 2015), says that as a network trains, each layer's input keeps "
        "changing because the layers below it change (internal covariate shift), and that BN "
        "helps by holding those inputs steady. The second (Santurkar et al. 2018) tests that "
        "story and finds another: BN still works when the inputs are made to move on purpose, "
        "it does not reduce the shift as they measure it, and what it does change is the loss "
        "landscape, which becomes smoother, so that a step along the gradient goes where the "
        "gradient said it would and larger steps are safe. Measured here: steady inputs and "
        f"faster training with BN, {ioffe}; noisy BN about as good as BN and better than none "
        f"while its inputs move more, {noise}; BN not reducing the shift, {shift}; a smoother "
        f"landscape with BN, {smooth}. The stories need not exclude each other: the second asks "
        "whether steadier inputs are what helps, not whether BN steadies them. A verdict left "
        "open says above what would decide it.",
    )


def analyze(results, out) -> list[Section]:
    figures = figures_dir(out)
    sections = [
        _ioffe(results, figures),
        _santurkar_noise(results, figures),
        _santurkar_shift(results, figures),
        _santurkar_smooth(results, figures),
    ]
    return [*sections, _lesson(sections)]


EXPERIMENT = Experiment(
    "why-bn",
    "Why BatchNorm works: covariate shift and smoothness, both measured",
    f"The BN paper's fully connected net ({MLP}: 3 hidden layers of 100 sigmoids, batches of "
    f"60, plain SGD for {PAPER_STEPS:,} steps, {MLP_STEPS['quick']:,} at `quick`) with and "
    "without BN, on Fashion-MNIST (and MNIST where its files are found; at least "
    f"{MLP_SEEDS} seeds); and {CNN} (VGG-11 at 1/8 of its width) on the budget's CIFAR-10, "
    "for the budget's epochs, with BN, BN followed by injected noise, and no norm (SGD with "
    "momentum). "
    "Every run is measured as it trains: layer-input percentiles, and for the VGG runs with "
    "and without BN each layer's covariate shift and the loss and gradient down the gradient.",
    runs,
    analyze,
)

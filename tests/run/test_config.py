"""The config parser: precedence, types, and loud failures on unknown keys or bad values."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reslab.errors import ConfigError
from reslab.run.config import FIELDS, TrainConfig, build_config, read_toml, to_toml
from reslab.run.optim import OPTIMIZERS
from reslab.train.recipes import RECIPES, get_recipe


def test_defaults_are_the_he2015_cifar_recipe():
    he = build_config(get_recipe("he2015-cifar").overrides)
    default = TrainConfig().validate()
    assert (he.model, he.dataset, he.lr, he.max_steps, he.batch_size) == (
        "resnet20",
        "cifar10",
        0.1,
        64_000,
        128,
    )
    assert he.milestones == [0.5, 0.75] and default.max_steps == he.max_steps


def test_later_layers_win():
    c = build_config({"lr": 0.1, "epochs": 3}, {"lr": 0.05}, {"batch_size": 64})
    assert (c.lr, c.batch_size, c.epochs) == (0.05, 64, 3)


def test_a_layer_giving_epochs_means_epochs():
    c = build_config(get_recipe("he2015-cifar").overrides, {"epochs": 300})
    assert (c.epochs, c.max_steps) == (300, 0)
    c = build_config({"epochs": 10}, {"max_steps": 5, "epochs": 2})
    assert (c.epochs, c.max_steps) == (2, 5)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": 0}, "lr: bad value 0.0; expected a number in (0, 1e6]"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0, "max_steps": 0}, "epochs"),
        ({"optimizer": "adagrad"}, f"allowed: {', '.join(OPTIMIZERS)}"),
        ({"schedule": "poly"}, "allowed: constant, step"),
        ({"norm": "layernorm"}, "allowed: batchnorm"),
        ({"milestones": [0.8, 0.5]}, "milestones"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"lerning_rate": 0.1}, "unknown config key 'lerning_rate'"),
        ({"lr_": 0.1}, "did you mean 'lr'"),
        ({"lr": "fast"}, "lr: expected float"),
        ({"epochs": 2.5}, "epochs: expected int"),
        ({"flip": 1}, "flip: expected bool"),
        ({"milestones": "0.5"}, "milestones: expected a list"),
        ({"tta": True, "tta_shift": 9}, "tta_shift: bad value 9; expected an integer in .0, 8.$"),
        ({"tta": True, "tta_shift": -1}, "tta_shift: bad value -1"),
        ({"tta": True, "tta_shift": 1.5}, "tta_shift: expected int"),
        ({"tta_shift": 2}, "tta_shift: 2 shifts the TTA views, but tta is off; add --tta"),
        ({"progressive": [24, 16]}, "progressive: bad value .24, 16.; expected increasing"),
        ({"progressive": [2]}, "progressive: bad value .2."),
        ({"progressive": [16.5]}, "progressive: expected a list of whole numbers"),
        ({"progressive": 16}, "progressive: expected a list of numbers"),
    ],
)
def test_bad_values_fail_naming_the_key(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_config({"epochs": 1}, values)


def test_every_recipe_is_valid_and_cites_a_source():
    for recipe in RECIPES.values():
        build_config(recipe.overrides)
        assert len(recipe.source) > 20
    with pytest.raises(ConfigError, match="allowed: he2015-cifar, cosine, cifar-onecycle, demo"):
        get_recipe("fast-ish")


def test_toml_round_trip(tmp_path):
    config = build_config({"epochs": 3, "dataset": 'folder:/a "b"\\c', "milestones": [0.3]})
    path = tmp_path / "config.toml"
    path.write_text(to_toml(config.to_dict()))
    assert build_config(read_toml(path)) == config


def test_toml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(bad)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.floats(0, 1), max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(FIELDS) + ["bogus", "Lr"]), _scalars, max_size=6))
def test_parser_either_accepts_a_valid_config_or_raises_config_error(values):
    try:
        config = build_config({"epochs": 1}, values)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert config.lr > 0 and config.batch_size >= 1
        assert config.epochs >= 1 or config.max_steps >= 1


def test_saved_configs_without_shortcut_pad_keep_the_old_convention():
    from reslab.run.config import saved_config

    old = build_config({}).to_dict()
    del old["shortcut_pad"]
    assert saved_config(old).shortcut_pad == "after"
    assert saved_config({**old, "shortcut_pad": "both"}).shortcut_pad == "both"
    assert build_config({}).shortcut_pad == "both"


def test_saved_configs_without_tta_shift_evaluate_as_before():
    from reslab.run.config import saved_config

    old = build_config({"tta": True}).to_dict()
    del old["tta_shift"]
    assert saved_config(old).tta_shift == 0 and saved_config(old).tta
    assert build_config({"tta": True, "tta_shift": 2}).tta_shift == 2


def test_every_key_has_help_and_shows_its_allowed_values_and_default():
    from reslab.run.config import describe

    for name in FIELDS:
        text = describe(name)
        assert FIELDS[name].metadata["help"] and "(default: " in text, name
        assert "NORMS" not in text and "OPTIMIZERS" not in text
    assert f"one of {', '.join(OPTIMIZERS)} (default" in describe("optimizer")
    assert "onecycle" in describe("schedule") and "a number in (0, 1e6]" in describe("lr")
    assert describe("seed") and describe("milestones")


def test_non_finite_numbers_are_refused():
    for key in ("lr", "weight_decay", "warmup_epochs", "momentum"):
        with pytest.raises(ConfigError, match=key):
            build_config({"epochs": 1}, {key: float("inf")})
    with pytest.raises(ConfigError, match="a finite number"):
        build_config({"epochs": 1}, {"weight_decay": float("nan")})


def test_the_subpackage_is_not_shadowed():
    import reslab
    import reslab.run.config

    assert reslab.run.config.TrainConfig is TrainConfig
    assert callable(reslab.fit) and not callable(reslab.train)


def test_progressive_sizes_arrive_as_whole_numbers_from_flags_and_files():
    assert build_config({"epochs": 1}, {"progressive": [16.0, 24]}).progressive == [16, 24]
    assert build_config({"epochs": 1}).progressive == []

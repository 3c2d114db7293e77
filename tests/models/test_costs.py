"""The stored figures `reslab models` lists are the models' own (regenerate them with
`python scripts/gen_docs.py` after changing the zoo)."""

import pytest

from reslab.models import list_models, model_info
from reslab.models.costs import measure, stored


def test_every_model_has_stored_figures_with_its_parameter_count():
    figures = stored()
    assert sorted(figures) == sorted(list_models())
    for name in list_models():
        assert figures[name]["params"] == model_info(name)["params"], name


@pytest.mark.parametrize("name", ["resnet20", "resnet50", "small_cnn", "resnet9"])
def test_stored_flops_are_measured_flops(name):
    assert stored()[name] == measure(name)


@pytest.mark.slow
def test_all_stored_flops_are_measured_flops():
    assert {name: measure(name) for name in list_models()} == stored()

"""Layer-input percentiles by a forward hook, and how far they travel over time."""

import math

import torch
from torch import nn

from reslab.metrics import PERCENTILES, input_percentiles, percentile_drift


def test_percentiles_of_each_channel_of_a_feature_map():
    # Channel c holds c * 100 + 0..99 over the batch and positions: its percentiles are known.
    values = torch.arange(100.0).view(4, 1, 5, 5)
    x = torch.cat([values + 100 * c for c in range(3)], dim=1)
    relu = nn.ReLU(inplace=True)
    model = nn.Sequential(nn.Identity(), relu)
    (found,) = input_percentiles(model, x, [relu])
    assert found.shape == (3, 3)
    for c in range(3):
        expected = torch.quantile(values.flatten() + 100 * c, torch.tensor(PERCENTILES) / 100)
        torch.testing.assert_close(found[c], expected)


def test_percentiles_of_a_flat_input_read_before_an_in_place_nonlinearity():
    x = torch.linspace(-3, 3, 101).view(101, 1).repeat(1, 2)
    x[:, 1] *= 2
    relu = nn.ReLU(inplace=True)
    (found,) = input_percentiles(nn.Sequential(relu), x.clone(), [relu], q=(0, 50, 100))
    torch.testing.assert_close(found, torch.tensor([[-3.0, 0.0, 3.0], [-6.0, 0.0, 6.0]]))


def test_a_forward_pass_in_training_mode_leaves_batchnorm_statistics_alone():
    bn = nn.BatchNorm1d(4)
    model = nn.Sequential(bn, nn.Sigmoid())
    input_percentiles(model, torch.randn(32, 4) + 5, [model[1]])
    assert torch.equal(bn.running_mean, torch.zeros(4))
    assert int(bn.num_batches_tracked) == 0


def test_drift_is_the_percentiles_path_in_units_of_the_spread():
    # Unit 0 moves up by 1 at each of 3 steps with a spread of 2; unit 1 stays put.
    steady = torch.tensor([-1.0, 0.0, 1.0])
    track = torch.stack([torch.stack([steady + t, steady]) for t in range(4)])
    drift = percentile_drift(track)
    assert drift.tolist() == [1.5, 0.0]
    # Back and forth counts as much as straight on: a path, not a displacement.
    zigzag = torch.stack([torch.stack([steady + (t % 2)]) for t in range(4)])
    assert percentile_drift(zigzag).tolist() == [1.5]


def test_a_unit_without_spread_has_no_drift():
    flat = torch.zeros(3, 1, 3)
    assert math.isnan(float(percentile_drift(flat)[0]))

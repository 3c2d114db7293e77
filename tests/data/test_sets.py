"""ImageSet / DataSplits invariants, channel statistics and the stratified validation split."""

import pytest
import torch

from reslab.data import DataSplits, ImageSet, channel_stats, split_validation
from reslab.errors import DataError


def labelled(counts):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = torch.arange(len(labels)).remainder(256).to(torch.uint8).view(-1, 1, 1, 1)
    return ImageSet(images.expand(-1, 3, 2, 2).contiguous(), labels)


def test_stratified_split_is_balanced_seeded_disjoint_and_exact():
    data = labelled([100, 100, 50, 250])
    rest, val = split_validation(data, 50, seed=0)
    assert len(val) == 50 and len(rest) == 450
    assert val.labels.bincount().tolist() == [10, 10, 5, 25]  # each class its share
    assert rest.labels.bincount().tolist() == [90, 90, 45, 225]
    again = split_validation(data, 50, seed=0)[1]
    assert torch.equal(again.images, val.images) and torch.equal(again.labels, val.labels)
    assert not torch.equal(split_validation(data, 50, seed=1)[1].images, val.images)


def test_held_out_and_kept_images_partition_the_training_set():
    n = 200
    data = ImageSet(torch.arange(n).to(torch.uint8).view(n, 1, 1, 1), torch.arange(n) % 7)
    rest, val = split_validation(data, 33, seed=3)
    ids = torch.cat([rest.images.flatten(), val.images.flatten()]).tolist()
    assert sorted(ids) == list(range(n)) and len(val) == 33
    assert torch.equal(val.labels, val.images.flatten().long() % 7)  # labels travel along


def test_rounding_still_gives_exactly_n_and_n_zero_gives_an_empty_set():
    data = labelled([3, 3, 3])
    assert len(split_validation(data, 4, seed=0)[1]) == 4
    rest, val = split_validation(data, 0, seed=0)
    assert rest is data and len(val) == 0 and val.images.shape[1:] == (3, 2, 2)


@pytest.mark.parametrize("n", [9, 10, -1])
def test_a_split_as_big_as_the_set_is_a_data_error(n):
    with pytest.raises(DataError, match="--val-split"):
        split_validation(labelled([3, 3, 3]), n, seed=0)


def test_channel_stats_match_torch_on_the_0_1_scale():
    x = torch.randint(0, 256, (300, 3, 4, 5), dtype=torch.uint8)
    mean, std = channel_stats(x, chunk=64)
    f = x.double() / 255
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), f.mean(dim=(0, 2, 3)))
    std_ref = f.std(dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), std_ref)


def test_splits_describe_themselves_and_bad_tensors_are_refused():
    s = labelled([2, 2])
    d = DataSplits("x", s, s, ["a", "b"], (0.5,) * 3, (0.2,) * 3)
    assert (d.num_classes, d.in_channels, d.image_size, d.skipped) == (2, 3, (2, 2), 0)
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 3, 2, 2), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels"):
        ImageSet(torch.zeros(2, 3, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))

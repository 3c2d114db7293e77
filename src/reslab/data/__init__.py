"""Data: sources (torchvision sets, the shipped CIFAR-10 sample, image folders), the on-disk
cache, the validation split and the device-resident loader. See docs/data.md."""

from reslab.data.decode import read_image
from reslab.data.loader import DeviceLoader
from reslab.data.sets import DataSplits, ImageSet, channel_stats, split_validation
from reslab.data.sources import (
    default_data_dir,
    default_val_split,
    holdout,
    list_datasets,
    load_dataset,
)

__all__ = [
    "DataSplits",
    "DeviceLoader",
    "ImageSet",
    "channel_stats",
    "default_data_dir",
    "default_val_split",
    "holdout",
    "list_datasets",
    "load_dataset",
    "read_image",
    "split_validation",
]

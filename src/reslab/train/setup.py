"""Everything a run needs, built from its config: data, loaders, model, optimizer, schedule."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from reslab.data import DataSplits, DeviceLoader, ImageSet, holdout, load_dataset
from reslab.data.loader import scaled_size
from reslab.errors import ConfigError
from reslab.metrics import EVAL_BATCH
from reslab.nn import PatchWhitening
from reslab.run.config import TrainConfig
from reslab.run.device import autocast, resolve_precision
from reslab.run.length import Length
from reslab.run.model import build_model
from reslab.run.optim import build_optimizer
from reslab.run.schedule import build_scheduler
from reslab.train import distributed, warm_start
from reslab.train.distributed import World
from reslab.train.ema import EMA
from reslab.train.runtime import CompiledOrEager, check_runtime

log = logging.getLogger("reslab.train")


@dataclass
class Setup:
    config: TrainConfig
    device: torch.device
    model: nn.Module  # the module whose state is saved
    step_model: nn.Module  # what the step calls: the model, or its torch.compile wrapper
    ema: AveragedModel | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None  # set by assemble
    scaler: torch.amp.GradScaler
    autocast: object
    loss_fn: nn.Module
    length: Length  # the schedule reads it at every step; a time budget re-sizes it
    world: World = distributed.SINGLE
    # The data and its loaders: set by `build`; None in a Setup from `assemble` alone.
    data: DataSplits | None = None
    train_loader: DeviceLoader | None = None
    val_loader: DeviceLoader | None = None
    test_loader: DeviceLoader | None = None

    @property
    def eval_model(self) -> nn.Module:
        # The bare model, not DDP's wrapper: evaluation needs no gradient synchronization.
        return self.ema.module if self.ema is not None else self.model

    def data_meta(self) -> dict:
        return data_record(self.data)

    def sync_norms(self) -> None:
        """Average BN statistics over processes (before evaluating or saving)."""
        for model in (self.model, self.ema.module if self.ema is not None else None):
            if model is not None:
                self.world.average_norm_statistics(model)


def data_record(d: DataSplits) -> dict:
    """What a run records of its data (in checkpoints, weights files and manifests)."""
    return {
        "dataset": d.name,
        "classes": list(d.classes),
        "mean": list(d.mean),
        "std": list(d.std),
        "in_channels": d.in_channels,
        "image_size": list(d.image_size),
        "digests": dict(d.digests),  # which data, wherever it lies (`reslab eval` compares)
    }


def _loaders(config: TrainConfig, data: DataSplits, sets, device, world: World):
    train_set, val_set = sets
    rank, world_size = world.rank, world.size
    per_rank = config.batch_size // world_size
    if per_rank * world_size != config.batch_size:
        raise ConfigError(
            f"batch_size: {config.batch_size} does not split evenly over {world_size} processes"
        )
    if config.batch_size > len(train_set):
        raise ConfigError(
            f"batch_size: {config.batch_size} is larger than the training split "
            f"({len(train_set)} images); use a smaller --batch-size"
        )
    common = dict(mean=data.mean, std=data.std, device=device, channels_last=config.channels_last)
    shard = dict(rank=rank, world_size=world_size)  # evaluation is split over ranks too
    train = DeviceLoader(
        train_set,
        batch_size=per_rank,
        train=True,
        seed=config.seed,
        crop_padding=config.crop_padding,
        flip=config.flip,
        cutout=config.cutout,
        rank=rank,
        world_size=world_size,
        **common,
    )
    val = (
        DeviceLoader(val_set, batch_size=EVAL_BATCH, train=False, **shard, **common)
        if len(val_set)
        else None
    )
    test = DeviceLoader(data.test, batch_size=EVAL_BATCH, train=False, **shard, **common)
    return train, val, test


def build(config: TrainConfig, world: World = distributed.SINGLE, *, fresh: bool = True) -> Setup:
    """A run's parts from its config. `fresh`: a new run, whose model starts from
    `config.init` where one is given; a resumed one (False) gets its weights from its checkpoint."""
    # Refuse what this machine cannot run before any data is decoded or model built.
    device = distributed.device_for(world, check_runtime(config))
    distributed.init(world, device)
    if config.threads:
        torch.set_num_threads(config.threads)
    initial = warm_start.read(config) if fresh and config.init else None
    data = load_dataset(config.dataset, config.data_dir or None, skip_corrupt=config.skip_corrupt)
    sets = holdout(data, config.val_split, config.seed)
    train, val, test = _loaders(config, data, sets, device, world)
    model = build_model(config, data_record(data))
    if initial is not None:
        line = warm_start.apply(model, initial, config, list(data.classes))
        if world.is_main:
            log.info(line)
    elif fresh:
        fit_whitening(model, sets[0], data.mean, data.std)
    check_progressive(config.progressive, model, data)
    s = assemble(config, model, device, len(train), world)
    s.data, s.train_loader, s.val_loader, s.test_loader = data, train, val, test
    return s


def check_progressive(sizes: list[int], model: nn.Module, data: DataSplits) -> None:
    """Refuse progressive-resizing sizes the data or the network cannot take, before training:
    each must be below the images' own size, and the network must accept it (one image through
    it in eval mode, which changes no state)."""
    if not sizes:
        return
    own = min(data.image_size)
    if max(sizes) >= own:
        raise ConfigError(
            f"progressive: sizes {sizes} must all be below the images' own size ({own} px): the "
            "last part of the run trains at that size"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, data.in_channels, *scaled_size(data.image_size, min(sizes))))
    except RuntimeError as e:
        raise ConfigError(
            f"progressive: {model.__class__.__name__} does not take {min(sizes)} px images "
            f"({str(e).splitlines()[0]}); use larger sizes, or a network that pools globally"
        ) from None
    finally:
        model.train(was_training)


WHITENING_IMAGES = 5000  # the training images a whitening layer's patches are counted on


def fit_whitening(model: nn.Module, images: ImageSet, mean, std) -> None:
    """Set the filters of the model's patch-whitening first layer, if it has one, from the
    first WHITENING_IMAGES training images as the network sees them (normalized, not augmented).
    Every process of a distributed run holds the same split, so all set the same filters."""
    layers = [m for m in model.modules() if isinstance(m, PatchWhitening)]
    if not layers:
        return
    n = min(WHITENING_IMAGES, len(images))
    first = DeviceLoader(images.subset(torch.arange(n)), batch_size=n, mean=mean, std=std,
                         train=False)  # fmt: skip
    x, _ = next(iter(first))
    for layer in layers:  # a whitening layer reads the image: it is the network's first
        layer.fit_(x)


def assemble(
    config: TrainConfig,
    model: nn.Module,
    device: torch.device,
    steps_per_epoch: int,
    world: World = distributed.SINGLE,
) -> Setup:
    """The training step's parts around `model`, without data: what `build` puts beside the
    loaders, and what a benchmark on synthetic batches times with `engine.train_step`."""
    precision = resolve_precision(config.precision, device)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = distributed.wrap(model, world, device, config.sync_bn)
    if config.sync_bn:
        model = step_model.module if world.enabled else step_model
    optimizer = build_optimizer(model, config)
    ema = None
    if config.ema:
        # Buffers are averaged too, so the EMA model's BN statistics match its weights.
        ema = EMA(model, config.ema)
    s = Setup(
        config=config,
        device=device,
        model=model,
        step_model=CompiledOrEager(step_model) if config.compile else step_model,
        world=world,
        ema=ema,
        optimizer=optimizer,
        scheduler=None,
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        autocast=autocast(device, precision),
        loss_fn=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        length=Length.of(config, steps_per_epoch),
    )
    # The schedule reads the run's length at every step: a time budget re-sizes it.
    length = s.length
    s.scheduler = build_scheduler(optimizer, config, lambda: length.total_steps, steps_per_epoch)
    return s

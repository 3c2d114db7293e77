"""The run format: what a run is, on disk and in its config. Training, inference, reports,
experiments and benchmarks all stand on it, and it imports none of them.

- `config`: the typed config, what each key means and allows, saved as config.toml;
- `length`: what epochs, max_steps and a time budget mean together;
- `optim`, `schedule`, `device`: the tables behind the optimizer, schedule, precision and
  device names a config may use;
- `directory`: the run directory's layout (`RunDir`) and the default output folders;
- `checkpoint`: the checkpoint and final-weights file formats;
- `model`: the network a config describes (`build_model`, `ARCH_KEYS`);
- `weights`: trained weights from any source, resolved to one thing (`resolve`).
"""

from reslab.run.config import TrainConfig, build_config, saved_config
from reslab.run.directory import RunDir, default_location
from reslab.run.length import Length
from reslab.run.model import ARCH_KEYS, build_model
from reslab.run.weights import Trained, resolve

__all__ = [
    "ARCH_KEYS",
    "Length",
    "RunDir",
    "TrainConfig",
    "Trained",
    "build_config",
    "build_model",
    "default_location",
    "resolve",
    "saved_config",
]

"""torch.hub entry points: `torch.hub.load(REPO_DIR, "resnet20", source="local", pretrained=True)`.

Every registered reslab network is an entry point; `pretrained=True` loads the weights reslab
ships for it (offline), and other keywords go to `reslab.create_model`. Only the entry points
are public names here, so `torch.hub.list` lists exactly the models.
"""

import sys as _sys
from pathlib import Path as _Path

_SRC = _Path(__file__).resolve().parent / "src"
if _SRC.is_dir() and str(_SRC) not in _sys.path:  # a checkout used without installing it
    _sys.path.insert(0, str(_SRC))

from reslab import create_model as _create_model  # noqa: E402
from reslab.models import list_models as _list_models  # noqa: E402

dependencies = ["torch", "torchvision", "safetensors"]


def _entry(name: str):
    def entry(pretrained: bool | str = False, **kwargs):
        return _create_model(name, pretrained=pretrained, **kwargs)

    entry.__name__ = name
    entry.__doc__ = f"reslab's {name}; pretrained=True loads its shipped weights."
    return entry


for _name in _list_models():
    globals()[_name] = _entry(_name)

"""Each registered model's size and cost (parameters, forward FLOPs), measured once and stored
(`costs.json`), so that `reslab models` lists the zoo at once instead of building every network.
`scripts/gen_docs.py` measures and writes the file; a test checks that the stored costs are the
models' own."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

COSTS_FILE = Path(__file__).parent / "costs.json"


def measure(name: str) -> dict[str, int]:
    """Parameters and forward FLOPs (a multiply-add counts 2) at the model's input size."""
    from reslab.models.flops import count_flops
    from reslab.models.registry import model_info

    return {"params": model_info(name)["params"], "flops": count_flops(name)}


@cache
def stored() -> dict[str, dict[str, int]]:
    return json.loads(COSTS_FILE.read_text()) if COSTS_FILE.is_file() else {}


def costs(name: str) -> dict[str, int]:
    """The stored costs of a model, measured now if the file does not have it yet."""
    return stored().get(name) or measure(name)

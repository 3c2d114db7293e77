"""Hostile files for the tests that check reslab never runs code from what it reads."""

import pickle
import zipfile
from pathlib import Path


def write_pickle_payload_checkpoint(path: Path, marker: Path) -> Path:
    """A file in torch's zip layout whose data.pkl, if unpickled, creates `marker`."""

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "archive/data.pkl",
            pickle.dumps({"format": "reslab-checkpoint", "x": Payload()}, protocol=2),
        )
        z.writestr("archive/version", "3\n")
    return path

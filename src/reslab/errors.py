"""Errors a user can cause (the CLI turns each into one line on stderr and exit code 2), and the
two ways a run ends early that are not errors of the code: divergence, and a stop on request."""


class UserError(Exception):
    """Something the user can fix: a bad flag, a missing file, a wrong checkpoint."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A config key is unknown or its value is out of range."""


class DataError(UserError):
    """A data set is missing, malformed or unreadable."""


class CheckpointError(UserError):
    """A checkpoint or weights file is missing, corrupt, hostile or does not fit the model."""


class DivergenceError(Exception):
    """The loss became NaN or Inf: training stopped (exit code 3) at optimizer step `step`."""

    exit_code = 3

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


class StopRequested(Exception):
    """Training stopped on request (SIGINT/SIGTERM); a checkpoint was written. Exit code
    128 + the signal's number, as a shell reports a process ended by it."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum

"""User-facing errors.

Anything derived from :class:`GenlabError` is a mistake the user can fix (bad config, missing
data, foreign checkpoint). The CLI prints its message as ONE line and exits with code 2; no
traceback unless ``--debug`` or ``HYDRA_FULL_ERROR=1``.
"""


class GenlabError(Exception):
    """A user-fixable problem; the message must say what is wrong and how to fix it."""

    exit_code = 2


class ConfigError(GenlabError):
    """The composed config is invalid (unknown key, wrong type, out-of-range value, ...)."""


class UserError(ConfigError):
    """A problem with the command line itself (or with what a run directory would replay into it)."""


class DataError(GenlabError):
    """A dataset is missing, corrupt or unreadable."""


class CheckpointError(GenlabError):
    """A checkpoint file is missing, truncated or not a genlab checkpoint."""


class TrainingDiverged(GenlabError):
    """A loss became NaN/inf; training stopped and the last good checkpoint was kept."""

    exit_code = 1


class RunInterrupted(GenlabError):
    """SIGINT/SIGTERM stopped training between two steps; ``last.ckpt`` holds the step reached."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code

"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (a missing file, an unknown model name, a
malformed manifest line). Its message is one line that names the problem and the fix. The CLI
prints it without a traceback and exits with code 2; library callers can catch it.
"""


class UserError(Exception):
    """A problem with the user's input, explained in one actionable line.

    ``resumable``: set by a long job that met the problem after saving progress (a path inside
    ``--out``); the CLI then keeps that progress instead of removing a fresh ``--out``."""

    exit_code = 2
    resumable = None

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


class ModelNotFound(UserError):
    """A model name that no loader knows, or whose weights cannot be found."""


class DatasetError(UserError):
    """A dataset, manifest or image that cannot be read."""


class UnsupportedError(UserError):
    """The model does not support what was asked (e.g. a decomposition of a SigLIP head)."""

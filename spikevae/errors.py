"""User-facing errors.

Every error a user can cause (bad file, bad parameter, bad channel) is raised as a
:class:`SpikevaeError` whose message names the problem and the fix. The CLI prints
such errors as one line and exits non-zero; other exceptions are bugs and keep their
traceback.
"""


class SpikevaeError(Exception):
    """An error caused by the input or the configuration, with a message that says how to fix it."""


class SpikevaeConfigError(SpikevaeError, ValueError):
    """An invalid configuration key or value."""


class RecordingError(SpikevaeError, ValueError):
    """A recording that cannot be read or used as it is."""

"""Errors a user can fix by changing a config value, a path or a file.

The entry points print them as one paragraph and exit with status 2, without a traceback
(set HYDRA_FULL_ERROR=1 to see one). Anything else is a bug and keeps its traceback.
"""


class LitlabError(Exception):
    """A mistake in the user's input; the message names the bad value and the fix."""


class ConfigError(LitlabError):
    """A config value that is missing, of the wrong type, out of range or incompatible."""


class DataError(LitlabError):
    """Data files that are missing, unreadable or inconsistent with the data config."""


class CheckpointError(LitlabError):
    """A checkpoint that is missing, unreadable, unsafe or does not fit its model."""

"""The errors a user can fix: bad config, bad data, a missing or corrupt file, a run that differs.

Every such error derives from :class:`UserError`. The command-line entry points print its message
alone, without a traceback (``debug=true`` shows the traceback); any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; its message says what is wrong and names the key, file or row."""


class ConfigError(UserError, ValueError):
    """A config key has a bad type, value or combination; the message names the key."""


class RunMismatchError(UserError):
    """The run directory holds a different run (config, data or code); the message names what differs."""


class ModelError(UserError):
    """A model or tokenizer cannot be loaded: a missing directory, a truncated or corrupt file; the
    message names the directory or file and says what to do."""

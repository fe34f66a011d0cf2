"""Errors that the command-line tools report as one line and a non-zero exit."""


class MjxbotError(Exception):
    """Base class: a problem in the user's input, reported without a traceback."""


class ConfigError(MjxbotError, ValueError):
    """A configuration file or override is malformed, mistyped or out of range."""


class ModelError(MjxbotError, ValueError):
    """An MJCF model is missing, malformed or lacks a name the config refers to."""

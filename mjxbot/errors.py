"""Errors that the command-line tools report as one line and a non-zero exit."""

import argparse
import sys
from collections.abc import Callable
from typing import Any


class MjxbotError(Exception):
    """Base class: a problem in the user's input, reported without a traceback."""


class ConfigError(MjxbotError, ValueError):
    """A configuration file or override is malformed, mistyped or out of range."""


class ModelError(MjxbotError, ValueError):
    """An MJCF model is missing, malformed or lacks a name the config refers to."""


class ArgumentParser(argparse.ArgumentParser):
    """Argument errors as one `error:` line and exit code 2, like `run_cli`."""

    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def run_cli(main: Callable[..., int], *args: Any) -> int:
    """Runs a CLI body; an `MjxbotError` becomes one `error:` line on stderr and exit code 2."""
    try:
        return main(*args)
    except MjxbotError as e:
        # Messages quoting a parser (YAML, MuJoCo) may span lines.
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2

"""Command-line parsing shared by `train.py`, `eval.py` and `python -m mjxbot.export`.

Flags come from small dataclasses through tyro; a rejected command line is one
`error:` line on stderr and exit code 2, never a traceback or tyro's error box.
Importing this module (and `mjxbot`) starts no XLA backend, so `train.py` can
parse before `jax.distributed.initialize` (tests/test_cli.py checks).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn


def _tyro_message(text: str) -> str:
    """The gist of tyro's boxed error text on one line; a "Perhaps you meant" hint kept."""
    import re

    body: list[str] = []
    sections: list[list[str]] = [body]
    title = ""
    for raw in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw).strip()
        if line.startswith("╭"):
            title = line.strip("╭╮─ ")
            continue
        if line.startswith("╰"):
            break
        line = line.strip("│").strip()
        if line and set(line) <= {"─"}:
            sections.append([])
        elif line:
            sections[-1].append(line)
    if body and body[0].startswith("Missing from") and len(body) > 1:
        what = " ".join(body[2:]).removesuffix("(required)").strip()
        body = [f"missing argument {body[1]}" + (f" ({what})" if what else "")]
    message = " ".join(body) or title or "invalid arguments"
    if " Got errors: " in message:  # an `X | None` flag: keep X's reason only
        message = message.split(" no type matching")[0] + " " + message.rsplit(">: ", 1)[-1]
    for section in sections[1:]:
        if section and section[0].startswith("Perhaps you meant"):
            flags = [w for line in section[1:] for w in line.split() if w.startswith("-")]
            if flags:
                message += f" (did you mean {', '.join(dict.fromkeys(flags))}?)"
    return " ".join(message.split())


def parse_cli(cls: type, argv: list[str] | None, prog: str, description: str) -> Any:
    """`tyro.cli(cls)` with repeatable list flags (`--config a --config b`) and plain
    `--flag` booleans; a rejected command line is one `error:` line and exit code 2."""
    import contextlib
    import io

    import tyro

    argv = sys.argv[1:] if argv is None else list(argv)
    helping = any(a in ("-h", "--help") for a in argv)
    captured = io.StringIO()
    columns = os.environ.get("COLUMNS")
    if not helping:
        os.environ["COLUMNS"] = "1000"  # tyro wraps its error box at the terminal width
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(
                cls,
                args=argv,
                prog=prog,
                description=description,
                config=(tyro.conf.UseAppendAction, tyro.conf.FlagCreatePairsOff),
            )
    except SystemExit as e:
        if e.code not in (0, None):
            print(
                f"error: {_tyro_message(captured.getvalue())} (see {prog} --help)",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        raise
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
        if not captured.getvalue().lstrip().startswith("╭"):
            sys.stderr.write(captured.getvalue())  # warnings, not a rejected command line


def cli_error(message: str) -> NoReturn:
    """A bad flag value found after parsing: one `error:` line and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)

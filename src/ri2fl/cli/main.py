"""Entry point of the ``ri2fl`` command.

Each subcommand lives in its own module ``ri2fl.cli.<name>`` exposing

- ``HELP``: one line for the command list,
- ``add_arguments(parser)``: its options (the parser's epilog should show examples),
- ``run(args) -> int``: does the work and returns the exit status.

User errors (:class:`ri2fl.errors.Ri2flError`) are printed as one line and exit with 2;
anything unexpected is printed as one line too (``--debug`` shows the traceback) and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from .. import __version__
from ..errors import Ri2flError
from ._common import warning_lines

#: Subcommands in the order ``ri2fl --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "demo",
    "info",
    "convert",
    "simulate",
    "train",
    "predict",
    "segment",
    "profile",
    "report",
    "evaluate",
    "stitch",
    "models",
)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the run is so that every ``with`` block cleans up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal kills at once
    raise Terminated(signum)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated`, as Python turns SIGINT into
    KeyboardInterrupt: temporary outputs are then removed as on Ctrl-C.

    Signals the caller ignores (``nohup``) stay ignored; outside the main thread this does
    nothing.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
                previous[signum] = signal.signal(signum, _terminate)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _load(name: str):
    try:
        return importlib.import_module(f"ri2fl.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"ri2fl.cli.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ri2fl",
        description="Label-free multiplexed 3D imaging: refractive-index tomograms to inferred "
                    "fluorescence, uncertainty, masks and single-cell features.",
        epilog="Examples:\n  ri2fl demo -o demo_out\n  ri2fl info cell.TCF --json\n"
               "  ri2fl predict cell.TCF -o predictions/ --tta 8 --mc 8\n\n"
               "Run 'ri2fl COMMAND --help' for the options and examples of each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ri2fl {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks and debug logs")
    parser.add_argument("--quiet", action="store_true", help="hide progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


class _CommandLines(logging.Formatter):
    """``ri2fl <command>: error: <message>``, as the CLI prints its own errors."""

    def __init__(self, command: str | None):
        super().__init__()
        self.command = command or ""

    def format(self, record: logging.LogRecord) -> str:
        return f"ri2fl {self.command}: {record.levelname.lower()}: {record.getMessage()}"


def _configure_logging(debug: bool, command: str | None) -> None:
    """Debug: every logger with its name; else warnings and errors as one plain line each."""
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_CommandLines(command))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug, args.command)
    if args.quiet:
        os.environ["RI2FL_NO_PROGRESS"] = "1"
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        with signals_interrupt(), warning_lines(args.command):
            return int(args._run(args) or 0)
    except Ri2flError as exc:
        if args.debug:
            raise
        print(f"ri2fl {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"ri2fl {args.command}: interrupted", file=sys.stderr)
        return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
    except Exception as exc:  # a bug, but the user still gets one line
        if args.debug:
            raise
        print(f"ri2fl {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(run again with --debug for the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

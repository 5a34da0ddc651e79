"""Command line: ``python -m offrl <command> ...``; every Snakemake rule runs one of these.

The trunk: ``main``, the global options every command takes and the help layout. Each area adds its
commands from its own module (``offrl.commands.*``, ``offrl.safer.commands``); a command that runs a config
dataclass takes its fields as options (``offrl.options``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch

from offrl import plan
from offrl.commands import data, findings, offline, report
from offrl.report.scale import STUDIES, load_scale_note, stated_scale
from offrl.safer import commands as safer

# Default thread count by hand: the networks are small, so more threads mostly wait on each other (on a busy
# 2-core machine the default of every core ran TD3+BC 40x slower than one thread). Snakemake rules pass their
# `threads:`.
DEFAULT_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (required options and off-by-default flags have none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.required or action.default in (None, False, argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)".strip()


def _global_options(in_command: bool) -> argparse.ArgumentParser:
    """--threads, --device, --quiet: accepted before the command and after it.

    After the command they default to SUPPRESS, so that a value given before it is not overwritten.
    """
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("global options (before or after the command)")

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if in_command else value

    group.add_argument(
        "--threads",
        type=int,
        default=default(DEFAULT_THREADS),
        metavar="N",
        help=f"torch CPU threads (default: {DEFAULT_THREADS}, i.e. min(2, this machine's cores); "
        "Snakemake passes each rule's threads, 1 per training job by default; evaluate: worker processes)",
    )
    group.add_argument(
        "--device",
        default=default("auto"),
        help=(
            "train, behaviour and bench: auto (a free GPU, else the CPU), cpu, cuda (a free GPU) or cuda:<index> "
            "(default: auto)"
        ),
    )
    group.add_argument("--quiet", action="store_true", default=default(False), help="no progress bar")
    group.add_argument(
        "--capture",
        choices=("auto", "off"),
        default=default("auto"),
        help=(
            "train, behaviour and bench: auto runs each training step as a captured CUDA graph on a GPU; "
            "off always eagerly (debugging)"
        ),
    )
    group.add_argument(
        "--jobs-per-gpu",
        type=int,
        default=default(1),
        metavar="K",
        help="train, behaviour and bench: jobs sharing one GPU (offline.jobs_per_gpu)",
    )
    group.add_argument(
        "--run-config",
        default=default(None),
        metavar="YAML",
        help="tables and figures: the run's resolved config (results/config.yaml); each states its scale from it",
    )
    group.add_argument(
        "--study",
        choices=STUDIES,
        default=default("offline"),
        help="with --run-config: whose steps, seeds and data size the scale note gives",
    )
    return parser


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Give every command the help formatter, and a help line to options that have none (so their default shows)."""
    parser.formatter_class = _HelpFormatter
    for action in parser._actions:
        if action.help is None and action.default not in (None, False, argparse.SUPPRESS):
            action.help = "(default: %(default)s)"
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _show_defaults(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offrl", description=__doc__.split("\n\n")[0], parents=[_global_options(in_command=False)]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A command that takes the global options too."""
        p = sub.add_parser(name, parents=[*kwargs.pop("parents", []), _global_options(in_command=True)], **kwargs)
        p.set_defaults(command_parser=p)
        return p

    for area in (data, offline, report, safer, findings, plan):
        area.add_commands(add)
    _show_defaults(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from offrl.data.dataset import DatasetError

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        note = load_scale_note(args.run_config, args.study) if args.run_config else ""
        with stated_scale(note):
            args.func(args)
    except (DatasetError, FileNotFoundError, ValueError) as err:
        # Expected failures (bad input, missing data, no network) get one line, not a traceback.
        print(f"offrl {args.command}: error: {err}", file=sys.stderr)
        sys.exit(1)

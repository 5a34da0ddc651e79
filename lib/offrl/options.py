"""Command-line options read from config dataclasses, so an option is declared once: as a field.

:func:`add_fields` gives a parser one ``--flag`` per field of a config dataclass (``batch_size`` is
``--batch-size``): its type, its default, its choices (a ``Literal``) and its help, which is the
field's docstring (the string right under it). :func:`field_values` reads them back as the
dataclass's keyword arguments. A field's ``metadata`` (:func:`cli`) renames its flag, keeps it off
the command line (a value the command derives, or one no command sets) or adds choices known at run
time.

A small helper over argparse rather than a library (tyro, simple-parsing): the commands keep the
exact flag names, defaults and choice lists Snakemake's rules and users call (``--steps`` for
``total_steps``, ``--options`` as JSON), argparse's one-line errors and help layout, and the
global options accepted before or after the command; tyro would rename nested and boolean flags
and simple-parsing brings its own help and nesting rules, each a new dependency to pin for
about a hundred lines here.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import shlex
import sys
import textwrap
import types
import typing
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal, Union


def command_line() -> str:
    """This process's command, as the provenance records write it."""
    return shlex.join(["python", "-m", "offrl", *sys.argv[1:]])


def cli(
    flag: str | None = None, *, hidden: bool = False, choices: Sequence[Any] | None = None, metavar: str | None = None
) -> dict[str, Any]:
    """A field's command-line metadata: ``field(default=..., metadata=cli(flag="--steps"))``.

    ``hidden``: no flag (the command derives the value, or no command sets it).
    """
    return {"cli": {"flag": flag, "hidden": hidden, "choices": choices, "metavar": metavar}}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring: the string literal right under its annotation in the class body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def field_default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of dataclass ``cls`` (a fresh one from its factory; MISSING if none)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"got a JSON {type(value).__name__}")
    return value


def _bare(kind: Any) -> Any:
    """``X`` of ``X | None``; any other type as it is."""
    if typing.get_origin(kind) in (Union, types.UnionType) and type(None) in typing.get_args(kind):
        return next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return kind


def _shown_fields(cls: type, only: Sequence[str] | None) -> list[dataclasses.Field]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(only or ()) - set(fields))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    chosen = [fields[name] for name in only] if only is not None else list(fields.values())
    return [f for f in chosen if not f.metadata.get("cli", {}).get("hidden")]


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("cli", {}).get("flag") or "--" + field.name.replace("_", "-")


def _dest(field: dataclasses.Field) -> str:
    """argparse's own name for the flag's value (``--steps``: ``steps``, also for a field ``total_steps``)."""
    return flag_name(field).lstrip("-").replace("-", "_")


def add_fields(
    parser: argparse.ArgumentParser,
    cls: type,
    only: Sequence[str] | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """One flag per field of dataclass ``cls`` (or of the fields ``only`` names, in that order).

    ``defaults`` replaces a field's default for this command (a nested config whose command runs
    it with other settings than the class's own, e.g. SAC's temperature downstream).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in _shown_fields(cls, only):
        meta = field.metadata.get("cli", {})
        kind = _bare(hints[field.name])
        origin = typing.get_origin(kind)
        default = defaults[field.name] if defaults and field.name in defaults else field_default(cls, field.name)
        options: dict[str, Any] = {"help": docs.get(field.name)}
        if default is dataclasses.MISSING:
            options["required"] = True
        if kind is bool:
            if default is not False:
                raise TypeError(f"{cls.__name__}.{field.name}: a boolean flag must default to False")
            parser.add_argument(flag_name(field), action="store_true", **options)
            continue
        if origin is Literal:
            options["choices"] = list(typing.get_args(kind))
            kind = type(options["choices"][0])
        elif origin in (list, tuple):
            options["nargs"] = "+"
            kind = typing.get_args(kind)[0]
            default = list(default) if default is not dataclasses.MISSING else default
        elif kind is dict or origin is dict:
            kind = str  # JSON on the command line; field_values parses it
            default = json.dumps(default) if default is not dataclasses.MISSING else default
        if kind is not str:
            options["type"] = kind
        if meta.get("choices") is not None:
            options["choices"] = list(meta["choices"])
        if meta.get("metavar"):
            options["metavar"] = meta["metavar"]
        if default is not dataclasses.MISSING:
            options["default"] = default
        parser.add_argument(flag_name(field), **options)


def field_values(args: argparse.Namespace, cls: type, only: Sequence[str] | None = None) -> dict[str, Any]:
    """The parsed flags of ``cls``'s fields (as :func:`add_fields` added them) as its keyword arguments."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in _shown_fields(cls, only):
        value = getattr(args, _dest(field))
        kind = _bare(hints[field.name])
        if value is not None and (kind is dict or typing.get_origin(kind) is dict):
            try:
                value = _json_object(value)
            except ValueError as err:  # json.JSONDecodeError is one
                raise ValueError(f"{flag_name(field)} {value}: expected a JSON object ({err})") from None
        elif value is not None and typing.get_origin(kind) is tuple:
            value = tuple(value)
        values[field.name] = value
    return values

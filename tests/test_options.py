"""offrl.options: a config dataclass's fields as flags (type, default, choices, help from the docstring) and back."""

import argparse
from dataclasses import dataclass, field
from typing import Literal

import pytest

from offrl.options import add_fields, cli, field_default, field_values


@dataclass
class ToyConfig:
    name: str
    """what the run is called"""
    total_steps: int = field(default=100, metadata=cli("--steps"))
    """gradient steps"""
    rate: float | None = None
    kind: Literal["fast", "slow"] = "fast"
    verbose: bool = False
    """say more"""
    hidden: tuple[int, ...] = (8, 8)
    options: dict = field(default_factory=dict)
    derived: int = field(default=0, metadata=cli(hidden=True))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_fields(p, ToyConfig)
    return p


def test_flags_carry_the_fields_types_defaults_choices_and_docstrings():
    actions = {a.dest: a for a in parser()._actions if a.dest != "help"}
    assert sorted(actions) == ["hidden", "kind", "name", "options", "rate", "steps", "verbose"]  # no --derived
    assert actions["name"].required and actions["name"].help == "what the run is called"
    steps = actions["steps"]
    assert steps.option_strings == ["--steps"] and steps.default == 100 and steps.type is int
    assert actions["rate"].default is None and actions["rate"].type is float
    assert actions["kind"].choices == ["fast", "slow"]
    assert actions["verbose"].default is False and actions["verbose"].help == "say more"
    assert actions["hidden"].nargs == "+" and actions["hidden"].default == [8, 8]
    assert actions["options"].default == "{}"


def test_parsed_flags_build_the_config():
    args = parser().parse_args(
        [
            "--name",
            "x",
            "--steps",
            "5",
            "--rate",
            "0.5",
            "--kind",
            "slow",
            "--verbose",
            "--hidden",
            "4",
            "--options",
            '{"a": 1}',
        ]
    )
    assert ToyConfig(**field_values(args, ToyConfig)) == ToyConfig("x", 5, 0.5, "slow", True, (4,), {"a": 1})
    defaults = field_values(parser().parse_args(["--name", "y"]), ToyConfig)
    assert ToyConfig(**defaults) == ToyConfig("y")


def test_a_bad_value_names_the_flag():
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'medium'"):
        parser().parse_args(["--name", "x", "--kind", "medium"])
    args = parser().parse_args(["--name", "x", "--options", "[1]"])
    with pytest.raises(ValueError, match=r"^--options \[1\]: expected a JSON object \(got a JSON list\)$"):
        field_values(args, ToyConfig)


def test_field_default_builds_a_fresh_value():
    assert field_default(ToyConfig, "total_steps") == 100
    first, second = field_default(ToyConfig, "options"), field_default(ToyConfig, "options")
    assert first == {} and first is not second

"""Every command keeps its flags: names, defaults, choices, nargs and required-ness as recorded in
tests/cli_flags.json (written from the parser before the options were derived from the config
dataclasses). Snakemake's rules and users call these; a change must be deliberate: regenerate with
``PYTHONPATH=lib:. python tests/test_cli_flags.py > tests/cli_flags.json`` and say why in the commit.
"""

import argparse
import json

from offrl import cli
from tests.conftest import REPO, commands

SNAPSHOT = REPO / "tests" / "cli_flags.json"


def flag_facts(parser: argparse.ArgumentParser) -> dict[str, list[dict]]:
    """Per command, each argument's command-line facts (help text aside), sorted by flag."""
    facts = {}
    for name, command in sorted(commands(parser).items()):
        rows = [
            {
                "flags": list(a.option_strings),
                "dest": a.dest,
                "default": repr(a.default),
                "const": repr(a.const),
                "choices": None if a.choices is None else list(a.choices),
                "nargs": a.nargs,
                "required": a.required,
                "type": getattr(a.type, "__name__", None),
                "action": type(a).__name__,
                "metavar": list(a.metavar) if isinstance(a.metavar, tuple) else a.metavar,  # as JSON reads it
            }
            for a in command._actions
            if not isinstance(a, argparse._HelpAction)
        ]
        facts[name] = sorted(rows, key=lambda row: (row["flags"], row["dest"]))
    return facts


def test_every_command_keeps_its_flags():
    expected = json.loads(SNAPSHOT.read_text())
    found = flag_facts(cli.build_parser())
    assert sorted(found) == sorted(expected)
    for name in expected:
        assert found[name] == expected[name], name


if __name__ == "__main__":
    facts = flag_facts(cli.build_parser())  # one line per argument, so a diff shows which changed
    commands = [
        f"{json.dumps(name)}: [\n" + ",\n".join(json.dumps(row, sort_keys=True) for row in rows) + "\n]"
        for name, rows in facts.items()
    ]
    print("{\n" + ",\n".join(commands) + "\n}")

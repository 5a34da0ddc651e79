"""What the command line's modules share, kept below all of them.

So ``offrl.cli`` and its command modules (``offrl.safer.commands``) need not import each other.
"""

from __future__ import annotations

import shlex
import sys


def command_line() -> str:
    """This process's command, as the provenance records write it."""
    return shlex.join(["python", "-m", "offrl", *sys.argv[1:]])

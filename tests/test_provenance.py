"""Every run records the commit, torch and CPU it came from (offrl.provenance)."""

import subprocess

import torch

from offrl import provenance
from tests.conftest import REPO


def test_provenance_names_this_checkouts_commit_torch_and_a_cpu():
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = provenance.provenance()
    assert record["commit"] is not None and record["commit"].removesuffix("+dirty") == head
    assert record["torch"] == torch.__version__ and record["cpu"]


def test_no_commit_outside_a_git_checkout(monkeypatch, tmp_path):
    """An installed copy of the package (no .git above it) records commit None, not an error."""
    fake_module = tmp_path / "offrl" / "provenance.py"
    fake_module.parent.mkdir()
    fake_module.touch()
    monkeypatch.setattr(provenance, "__file__", str(fake_module))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert provenance.code_commit() is None

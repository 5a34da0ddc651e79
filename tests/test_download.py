import subprocess
import sys

import pytest

from offrl.data.download import DownloadError, download
from tests.conftest import network_available

pytestmark = pytest.mark.skipif(network_available(), reason="tests the offline failure; this machine has network")


def test_download_fails_without_network_and_writes_nothing(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach the Minari remote hf://farama-minari.*source: local"):
        download("mujoco/hopper/expert-v0", tmp_path, "offrl/hopper/expert-v0")
    assert not any(tmp_path.iterdir())  # no half-written dataset


def test_download_command_prints_one_clear_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "offrl",
            "download",
            "--remote-id",
            "mujoco/hopper/expert-v0",
            "--env",
            "hopper",
            "--kind",
            "expert",
            "--root",
            str(tmp_path),
            "--summary",
            str(tmp_path / "s.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("offrl download: error: cannot reach the Minari remote")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

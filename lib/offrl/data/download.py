"""Download a remote Minari dataset, failing at once and clearly when there is no network."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

from offrl.data.dataset import DatasetError, _minari_root


class DownloadError(DatasetError):
    """The remote Minari storage cannot be reached, or refused the dataset."""


def _remote_endpoint(remote: str) -> tuple[str, int] | None:
    """Host and port behind a Minari remote (``hf://org``), where we know how to find them."""
    scheme = remote.split("://", 1)[0]
    if scheme == "hf":
        from huggingface_hub import constants

        url = urlparse(constants.ENDPOINT)
        return url.hostname or "", url.port or 443
    return None


def check_reachable(remote: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`DownloadError` within ``timeout_s`` if the remote's host cannot be reached.

    Minari itself would retry for half a minute and end in a stack trace.
    """
    endpoint = _remote_endpoint(remote)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout_s).close()
    except OSError as err:
        raise DownloadError(
            f"cannot reach the Minari remote {remote} ({endpoint[0]}:{endpoint[1]}): {err}. "
            "Without network, set `datasets: source: local` in the config to generate the datasets here."
        ) from err


def download(remote_id: str, root: str | Path, local_id: str) -> Path:
    """Fetch Minari dataset ``remote_id`` and store it under ``root`` as ``local_id``."""
    import minari
    from minari.storage.remotes import DEFAULT_REMOTE

    remote = os.environ.get("MINARI_REMOTE", DEFAULT_REMOTE)
    check_reachable(remote)
    root = Path(root).resolve()  # Minari joins relative roots twice
    staging = root / f".partial-{uuid.uuid4().hex}"
    try:
        with _minari_root(staging):
            try:
                minari.download_dataset(remote_id)
            except Exception as err:  # network and remote errors come in many types
                raise DownloadError(
                    f"downloading Minari dataset {remote_id!r} from {remote} failed: {type(err).__name__}: {err}"
                ) from err
        final = root / local_id
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        (staging / remote_id).rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final

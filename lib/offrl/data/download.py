"""Download a remote Minari dataset, failing at once and clearly when there is no network.

A dataset already placed by hand in Minari's local root (``MINARI_DATASETS_PATH``, default
``~/.minari/datasets``: where ``minari download`` puts it) is taken from there, without network.
That is how the Adroit data reaches a machine without network, and how the smoke run's stand-ins
(:mod:`offrl.data.standin`) reach the pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from offrl.data.dataset import DatasetError, _minari_root

LOCAL_HINT = "Without network, set `datasets: source: local` in the config to generate the datasets here."


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


def check_reachable(remote: str, timeout_s: float = 5.0, hint: str = LOCAL_HINT) -> None:
    """Raise :class:`DownloadError` within ``timeout_s`` if the remote's host cannot be reached.

    Minari itself would retry for half a minute and end in a stack trace. ``hint`` ends the message: the fix.
    """
    endpoint = _remote_endpoint(remote)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=timeout_s).close()
    except OSError as err:
        where = f"{endpoint[0]}:{endpoint[1]}"
        raise DownloadError(f"cannot reach the Minari remote {remote} ({where}): {err}. {hint}") from err


def local_minari_root() -> Path:
    """Minari's own local root: ``MINARI_DATASETS_PATH``, else ``~/.minari/datasets``."""
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets")


def placed_dataset(remote_id: str) -> Path | None:
    """The directory of ``remote_id`` in Minari's local root, if a complete copy is there."""
    path = local_minari_root() / remote_id
    return path if (path / "data" / "metadata.json").is_file() else None


def placement_hint(remote_ids: Sequence[str]) -> str:
    """How to place datasets by hand on a machine without network: one sentence naming them."""
    ids = " ".join(remote_ids)
    return (
        f"This run needs the Minari datasets {ids}: on a machine with network run `minari download {ids}`, then copy "
        f"the datasets' folders (under ~/.minari/datasets) here, to {local_minari_root()} (or set "
        "MINARI_DATASETS_PATH to where they are), and rerun."
    )


def download(remote_id: str, root: str | Path, local_id: str, needed: Sequence[str] = ()) -> Path:
    """Fetch Minari dataset ``remote_id`` and store it under ``root`` as ``local_id``.

    A copy placed in Minari's local root is used as it is; otherwise the dataset is downloaded.
    Without either, the error names every dataset of ``needed`` (the run's downloaded datasets)
    and how to place them by hand; with no ``needed``, it points at generating the data here.
    """
    import minari
    from minari.storage.remotes import DEFAULT_REMOTE

    root = Path(root).resolve()  # Minari joins relative roots twice
    final = root / local_id
    placed = placed_dataset(remote_id)
    staging = root / f".partial-{uuid.uuid4().hex}"
    try:
        if placed is not None:
            shutil.copytree(placed, staging / remote_id)
        else:
            remote = os.environ.get("MINARI_REMOTE", DEFAULT_REMOTE)
            hint = placement_hint(needed) if needed else LOCAL_HINT
            check_reachable(remote, hint=hint)
            with _minari_root(staging):
                try:
                    minari.download_dataset(remote_id)
                except Exception as err:  # network and remote errors come in many types
                    raise DownloadError(
                        f"downloading Minari dataset {remote_id!r} from {remote} failed: {type(err).__name__}: {err}"
                    ) from err
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        (staging / remote_id).rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def reference_scores(path: str | Path) -> dict[str, float]:
    """The ``ref_min_score`` / ``ref_max_score`` a Minari dataset carries (empty when it has none)."""
    metadata = json.loads((Path(path) / "data" / "metadata.json").read_text())
    return {key: float(metadata[key]) for key in ("ref_min_score", "ref_max_score") if metadata.get(key) is not None}

"""Writing outputs so that a crash or a concurrent reader never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomically(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a hidden sibling of ``path``, then rename it into place; return ``path``.

    The sibling keeps ``path``'s suffix, so writers that append one (``np.savez``) do not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_csv(frame: Any, path: str | Path, **to_csv: Any) -> Path:
    """``frame.to_csv(path, **to_csv)`` (a pandas DataFrame or Series) through :func:`write_atomically`."""
    return write_atomically(path, lambda tmp: frame.to_csv(tmp, **to_csv))


def write_text(path: str | Path, text: str) -> Path:
    """``Path(path).write_text(text)`` through :func:`write_atomically`."""
    return write_atomically(path, lambda tmp: tmp.write_text(text))


class UnreadableFileError(ValueError):
    """A saved file is damaged, or carries something other than plain data."""


def load_tensors(path: str | Path, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load`` of a file people may pass around, which can never run code.

    Only tensors, numbers, strings, lists, tuples and dicts load (``weights_only=True``); a
    file carrying a pickled Python object, or one that is truncated or not a torch file at
    all, raises :class:`UnreadableFileError` naming ``what`` and ``path`` in one line.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        culprit = next(
            (
                line.split(" was not an allowed")[0].strip()
                for line in str(err).splitlines()
                if "Unsupported global" in line
            ),
            None,
        )
        if culprit is None:  # not a pickled object: bytes that are no pickle at all
            detail = next(
                (line.strip() for line in str(err).splitlines() if line.startswith("Unsupported")), _first_line(err)
            )
            raise UnreadableFileError(
                f"cannot read the {what} {path}: it is damaged or not a torch file ({detail})"
            ) from err
        raise UnreadableFileError(
            f"refusing the {what} {path}: it carries a pickled Python object, which could run code when loaded "
            f"({culprit}); only tensors, numbers, strings, lists and dicts are accepted"
        ) from err
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
    ) as err:  # a truncated file: RuntimeError; a text file: KeyError
        raise UnreadableFileError(
            f"cannot read the {what} {path}: it is damaged or not a torch file ({_first_line(err)})"
        ) from err


def _first_line(err: BaseException) -> str:
    """The error's first sentence, which is all the reader of a one-line message needs."""
    first = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
    return f"{type(err).__name__}: {first}".rstrip(": ")

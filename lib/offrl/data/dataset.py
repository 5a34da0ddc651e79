"""The one dataset type every stage uses, and its Minari reader and writer.

A :class:`Dataset` is a flat sequence of transitions (s, a, r, s', terminal, timeout,
episode id) in episode order. ``terminal`` marks a true environment termination (no
bootstrapping from s'); ``timeout`` marks an episode cut for any other reason: the time
limit, the end of a dataset, a splice. Every episode ends with exactly one of the two.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np


class DatasetError(RuntimeError):
    """A dataset is missing, corrupted or inconsistent."""


@dataclass
class Dataset:
    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32
    rewards: np.ndarray  # (N,) float32
    next_observations: np.ndarray  # (N, obs_dim) float32
    terminals: np.ndarray  # (N,) bool
    timeouts: np.ndarray  # (N,) bool
    episode_ids: np.ndarray  # (N,) int64, 0..E-1 in order

    def __post_init__(self) -> None:
        n = len(self.rewards)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise DatasetError(f"field {f.name} has {len(getattr(self, f.name))} rows, rewards has {n}")

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def num_episodes(self) -> int:
        return int(self.episode_ids[-1]) + 1 if len(self) else 0

    def episode_slices(self) -> list[slice]:
        """The slice of each episode, in order."""
        starts = np.flatnonzero(np.diff(self.episode_ids, prepend=-1))
        ends = np.append(starts[1:], len(self))
        return [slice(int(s), int(e)) for s, e in zip(starts, ends)]

    def episode_returns(self) -> np.ndarray:
        return np.array([self.rewards[s].sum(dtype=np.float64) for s in self.episode_slices()])

    def validate(self) -> None:
        """Check the episode structure: ids consecutive from 0, each episode ends exactly once."""
        if len(self) == 0:
            raise DatasetError("dataset is empty")
        steps = np.diff(self.episode_ids)
        if self.episode_ids[0] != 0 or np.any((steps != 0) & (steps != 1)):
            raise DatasetError("episode ids must count up from 0 in steps of 1")
        ends = self.terminals | self.timeouts
        last = np.append(steps == 1, True)
        if np.any(self.terminals & self.timeouts):
            raise DatasetError("a transition is marked both terminal and timeout")
        if not np.array_equal(ends, last):
            bad = int(np.flatnonzero(ends != last)[0])
            raise DatasetError(f"transition {bad}: episode ends must coincide with terminal or timeout flags")

    @classmethod
    def concatenate(cls, parts: list[Dataset]) -> Dataset:
        """Datasets one after another; episode ids renumbered to stay consecutive."""
        offset = 0
        ids = []
        for part in parts:
            ids.append(part.episode_ids + offset)
            offset += part.num_episodes
        arrays = {
            f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls) if f.name != "episode_ids"
        }
        return cls(**arrays, episode_ids=np.concatenate(ids))

    def select(self, index: np.ndarray | slice) -> Dataset:
        """Rows ``index`` (which must keep whole episodes or cut them at flagged ends)."""
        return Dataset(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def top_episodes(self, fraction: float) -> Dataset:
        """The ``round(fraction · episodes)`` episodes (at least one) with the highest returns, in dataset order."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        keep = max(1, int(round(fraction * self.num_episodes)))
        best = np.sort(np.argsort(-self.episode_returns(), kind="stable")[:keep])
        slices = self.episode_slices()
        parts = [self.select(slices[i]) for i in best]
        for part in parts:
            part.episode_ids = np.zeros(len(part), dtype=np.int64)  # each a single episode; concatenate renumbers
        return Dataset.concatenate(parts)

    def episodes(self) -> Iterator[dict[str, np.ndarray]]:
        """Episodes in Minari's layout: T+1 observations, T actions, rewards and flags."""
        for s in self.episode_slices():
            yield {
                "observations": np.concatenate([self.observations[s], self.next_observations[s.stop - 1][None]]),
                "actions": self.actions[s],
                "rewards": self.rewards[s],
                "terminations": self.terminals[s],
                "truncations": self.timeouts[s],
            }

    @classmethod
    def from_episodes(cls, episodes: list[dict[str, np.ndarray]]) -> Dataset:
        """Inverse of :meth:`episodes`."""
        if not episodes:
            raise DatasetError("no episodes")
        obs, next_obs, ids = [], [], []
        for i, ep in enumerate(episodes):
            o = np.asarray(ep["observations"], dtype=np.float32)
            obs.append(o[:-1])
            next_obs.append(o[1:])
            ids.append(np.full(len(o) - 1, i, dtype=np.int64))
        cat = lambda key, dtype: np.concatenate([np.asarray(ep[key], dtype=dtype) for ep in episodes])  # noqa: E731
        return cls(
            observations=np.concatenate(obs),
            actions=cat("actions", np.float32),
            rewards=cat("rewards", np.float32),
            next_observations=np.concatenate(next_obs),
            terminals=cat("terminations", bool),
            timeouts=cat("truncations", bool),
            episode_ids=np.concatenate(ids),
        )

    def summary(self, env: str) -> dict[str, Any]:
        """Size and return statistics, as the dataset tables report them."""
        from offrl.envs import normalized_score

        returns = self.episode_returns()
        return {
            "transitions": len(self),
            "episodes": self.num_episodes,
            "terminals": int(self.terminals.sum()),
            "timeouts": int(self.timeouts.sum()),
            "return_mean": float(returns.mean()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
            "normalized_score": float(normalized_score(env, returns.mean())),
            "reward_mean": float(self.rewards.mean()),
        }


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    """Point Minari at ``root`` (it reads MINARI_DATASETS_PATH) for the duration of a call."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def write_minari(
    dataset: Dataset,
    root: str | Path,
    dataset_id: str,
    env: str | None,
    metadata: dict[str, Any] | None = None,
    step_labels: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``dataset`` as the Minari dataset ``dataset_id`` under ``root``; return its directory.

    ``env`` names a locomotion task of :mod:`offrl.envs` (its spec and reference scores go into
    the dataset); ``None`` for data from elsewhere (the safe-grasp family, whose tasks are many),
    with the observation and action boxes taken from the data. ``step_labels`` are per-transition
    arrays stored as Minari step infos (read back with :func:`load_step_labels`).

    The dataset is built in a hidden sibling directory and moved into place at the end, so
    a crash never leaves a directory that looks like a complete dataset.
    """
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    from offrl.envs import env_spec, make_env

    dataset.validate()
    root = Path(root).resolve()  # Minari joins relative roots twice
    final = root / dataset_id
    if final.exists():
        raise DatasetError(f"{final} already exists; delete it to write the dataset again")
    _check_free_space(dataset, root)
    _remove_dead_staging(root)
    staging = root / f".partial-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
    labels = {name: np.asarray(values) for name, values in (step_labels or {}).items()}
    for name, values in labels.items():
        if len(values) != len(dataset):
            raise DatasetError(f"step label {name!r} has {len(values)} rows, the dataset has {len(dataset)}")
    buffers = []
    for i, (episode, rows) in enumerate(zip(dataset.episodes(), dataset.episode_slices())):
        # Minari's infos line up with observations: the reset's first, then step t's at t + 1.
        infos = {name: np.concatenate([np.zeros(1, values.dtype), values[rows]]) for name, values in labels.items()}
        buffers.append(EpisodeBuffer(id=i, **episode, infos=infos or None))
    if env is None:
        described: dict[str, Any] = {
            "observation_space": gym.spaces.Box(-np.inf, np.inf, dataset.observations.shape[1:], np.float32),
            "action_space": gym.spaces.Box(-1.0, 1.0, dataset.actions.shape[1:], np.float32),
        }
        gym_env = None
    else:
        spec = env_spec(env)
        gym_env = make_env(env)
        described = {
            "env": gym_env.spec,
            "eval_env": gym_env.spec,
            "ref_min_score": spec.ref_min_score,
            "ref_max_score": spec.ref_max_score,
        }
    try:
        with _minari_root(staging), warnings.catch_warnings():
            # Minari asks for a code permalink and an e-mail address; the metadata carries the provenance.
            warnings.filterwarnings(
                "ignore", message=".*(code_permalink|author_email|eval_env|env_spec).*", category=UserWarning
            )
            minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=buffers,
                algorithm_name=(metadata or {}).get("algorithm", "offrl"),
                author="offrl",
                description=json.dumps(metadata or {}, sort_keys=True),
                data_format="hdf5",
                **described,
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        (staging / dataset_id).rename(final)
    finally:
        if gym_env is not None:
            gym_env.close()
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _check_free_space(dataset: Dataset, root: Path) -> None:
    """Refuse in one line a dataset the file system cannot hold: HDF5 crashes (a segfault) on a full disk."""
    needed = (
        sum(getattr(dataset, f.name).nbytes for f in fields(dataset)) + 1_000_000
    )  # HDF5 stores the arrays uncompressed
    existing = next(parent for parent in (root, *root.parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise DatasetError(
            f"No space left on device for the dataset under {root}: it needs about {needed / 1e6:.1f} MB, "
            f"{free / 1e6:.1f} MB are free"
        )


def _remove_dead_staging(root: Path) -> None:
    """Delete staging directories of writers on this host that died (kill -9, a crash): they would fill the disk."""
    prefix = f".partial-{socket.gethostname()}-"
    for staging in root.glob(f"{prefix}*"):
        pid, _, token = staging.name.removeprefix(prefix).partition("-")
        if not (pid.isdigit() and token.isalnum()):  # another host whose name starts with this one's
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _data_dir(path: Path) -> Path:
    """Where a Minari dataset keeps metadata.json: ``path/data``, or ``path`` itself when given that."""
    return path / "data" if (path / "data").is_dir() else path


def build_hint(path: str | Path) -> str:
    """How to get a missing dataset: the Snakemake target that builds it, for the paths the pipeline writes."""
    where = Path(path).as_posix().rstrip("/")
    if match := re.search(r"offrl/([a-z0-9]+)/([a-z0-9-]+)-v0$", where):
        target = f"resources/datasets/{match[1]}-{match[2]}.json"
    elif match := re.search(r"grasp/(offline|holdout)-v0$", where):
        target = f"resources/grasp/{match[1]}.json"
    else:
        return "check the path"
    return f"build it with `snakemake {target} --cores 2` in the repository root"


def load_dataset(path: str | Path) -> Dataset:
    """Load a Minari dataset directory (the one holding ``data/``) as a :class:`Dataset`."""
    import minari

    path = Path(path)
    data_dir = _data_dir(path)
    if not (data_dir / "metadata.json").is_file():
        raise DatasetError(f"no Minari dataset at {path} (expected {data_dir / 'metadata.json'}); {build_hint(path)}")
    try:
        minari_dataset = minari.MinariDataset(data_dir)
        episodes = [
            {
                "observations": ep.observations,
                "actions": ep.actions,
                "rewards": ep.rewards,
                "terminations": ep.terminations,
                "truncations": ep.truncations,
            }
            for ep in minari_dataset.iterate_episodes()
        ]
        action_space, observation_space = minari_dataset.action_space, minari_dataset.observation_space
        name = minari_dataset.spec.dataset_id
    except Exception as err:  # h5py, json and Minari raise many types for a damaged file
        raise DatasetError(f"cannot read the Minari dataset at {path}: {type(err).__name__}: {err}") from err
    check_episodes(
        episodes,
        f"dataset {name} at {path}",
        getattr(observation_space, "shape", None),
        getattr(action_space, "low", None),
        getattr(action_space, "high", None),
    )
    dataset = Dataset.from_episodes(episodes)
    dataset.validate()
    return dataset


ACTION_BOX_TOLERANCE = 1e-5  # float32 rounding of actions clipped to the box


def check_episodes(
    episodes: list[dict[str, np.ndarray]],
    name: str,
    obs_shape: tuple[int, ...] | None = None,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
) -> None:
    """Refuse data no algorithm should train on, naming ``name``, the field, the episode and the step.

    Episodes are in Minari's layout (see :meth:`Dataset.episodes`). Checked: at least one
    transition; every field's shape (T + 1 observations, T of the rest, the spaces' shapes);
    finite observations, actions and rewards; actions inside [``action_low``, ``action_high``];
    terminal and truncation flags that are booleans (or 0/1).
    """
    if not episodes or not sum(len(ep["actions"]) for ep in episodes):
        raise DatasetError(f"{name}: the dataset is empty ({len(episodes)} episodes, no transitions)")
    act_shape = None if action_low is None else np.shape(action_low)
    first = {key: np.shape(value)[1:] for key, value in episodes[0].items() if key in ("observations", "actions")}
    for i, ep in enumerate(episodes):
        where = lambda field, step=None: (
            f"{name}: field {field}, episode {i}" + ("" if step is None else f", step {step}")
        )  # noqa: E731
        steps = len(ep["actions"])
        expected = {
            "observations": (steps + 1, *(obs_shape if obs_shape is not None else first["observations"])),
            "actions": (steps, *(act_shape if act_shape is not None else first["actions"])),
            "rewards": (steps,),
            "terminations": (steps,),
            "truncations": (steps,),
        }
        for field, shape in expected.items():
            if np.shape(ep[field]) != shape:
                raise DatasetError(f"{where(field)}: shape {np.shape(ep[field])}, expected {shape} ({steps} steps)")
        for field in ("observations", "actions", "rewards"):
            values = np.asarray(ep[field])
            if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
                raise DatasetError(f"{where(field)}: values of type {values.dtype}, expected real numbers")
            bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            if bad.any():
                step = int(np.flatnonzero(bad)[0])
                raise DatasetError(f"{where(field, step)}: {values[step].tolist()} is not finite (NaN or infinite)")
        if action_low is not None and action_high is not None:
            actions = np.asarray(ep["actions"]).reshape(steps, -1)
            low, high = np.ravel(action_low), np.ravel(action_high)
            outside = ((actions < low - ACTION_BOX_TOLERANCE) | (actions > high + ACTION_BOX_TOLERANCE)).any(axis=1)
            if outside.any():
                step = int(np.flatnonzero(outside)[0])
                raise DatasetError(
                    f"{where('actions', step)}: {actions[step].tolist()} is outside the action box "
                    f"[{low.tolist()}, {high.tolist()}]"
                )
        for field in ("terminations", "truncations"):
            flags = np.asarray(ep[field])
            if flags.dtype != bool:
                numeric = np.issubdtype(flags.dtype, np.number)
                bad = ~np.isin(flags, (0, 1)) if numeric else np.ones(len(flags), bool)
                if bad.any():
                    step = int(np.flatnonzero(bad)[0])
                    raise DatasetError(
                        f"{where(field, step)}: {flags[step].item()!r} is not a boolean flag (True/False or 1/0)"
                    )


def load_step_labels(path: str | Path) -> dict[str, np.ndarray]:
    """The per-transition labels :func:`write_minari` stored as step infos, in dataset row order."""
    import minari

    data_dir = _data_dir(Path(path))
    try:
        per_episode = [ep.infos for ep in minari.MinariDataset(data_dir).iterate_episodes()]
    except Exception as err:  # as in load_dataset
        raise DatasetError(f"cannot read the Minari dataset at {path}: {type(err).__name__}: {err}") from err
    if not per_episode or not per_episode[0]:
        raise DatasetError(f"the dataset at {path} has no step labels")
    return {name: np.concatenate([infos[name][1:] for infos in per_episode]) for name in per_episode[0]}


def dataset_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance offrl wrote into a Minari dataset's description (empty for datasets from elsewhere)."""
    data_dir = _data_dir(Path(path))
    try:
        description = json.loads((data_dir / "metadata.json").read_text()).get("description") or "{}"
        provenance = json.loads(description)
    except (OSError, json.JSONDecodeError):
        return {}
    return provenance if isinstance(provenance, dict) else {}

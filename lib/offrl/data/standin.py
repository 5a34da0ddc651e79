"""Stand-ins for the Adroit datasets where they cannot be fetched: the smoke run and the tests.

A few episodes in the real Adroit env, written in Minari's format under Minari's own id
(``D4RL/door/expert-v2``) in a Minari root, so the pipeline reads them through the same path
as datasets placed there by hand (:func:`offrl.data.download.download`). They carry no
expert: ``expert`` holds the hand still (zero action plus Gaussian noise of ``noise``),
``cloned`` moves it at random, so the two differ as the contamination statistics need.
Every artefact built from them says so (their metadata's ``standin``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offrl.data.dataset import Dataset, write_minari
from offrl.data.generate import rollout
from offrl.envs import ADROIT_KINDS, env_spec, minari_remote_id

STANDIN_NOISE = 0.1


def standin_dataset(env: str, kind: str, episodes: int, seed: int) -> Dataset:
    """``episodes`` full episodes of the stand-in policy of ``kind`` in Adroit task ``env``."""
    if kind not in ADROIT_KINDS:
        raise ValueError(f"stand-in kind {kind!r}: allowed: {', '.join(ADROIT_KINDS)}")
    if episodes < 1:
        raise ValueError(f"stand-in episodes = {episodes}: must be at least 1")
    spec = env_spec(env)
    size = episodes * spec.max_episode_steps  # Adroit never terminates: every episode runs to the time limit
    if kind == "cloned":
        return rollout(env, None, size, seed)
    return rollout(env, lambda obs: np.zeros(spec.act_dim), size, seed, noise=STANDIN_NOISE)


def write_standin(env: str, kind: str, episodes: int, seed: int, root: str | Path) -> Path:
    """Write the stand-in of ``env``'s ``kind`` dataset under Minari root ``root``, as Minari's id; its directory."""
    remote_id = minari_remote_id(env, kind)
    metadata = {"standin": True, "env": env, "kind": kind, "episodes": episodes, "seed": seed}
    return write_minari(standin_dataset(env, kind, episodes, seed), root, remote_id, env, metadata=metadata)

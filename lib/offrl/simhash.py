"""SimHash state counts and the confidence conf(s) of Guided TD3+BC (Tang et al. 2017).

A state's code is μ(s) = sgn(A·g(s)), A ∈ R^{k×d} with i.i.d. N(0, 1) entries, g the
dataset's state normalisation. Codes are counted exactly: the k sign bits are packed into
bytes and counted with ``np.unique`` (no lossy modular hash tables). conf(s) is the
min-max normalised count of the state's code over the dataset's states, in [0, 1]; a code
never seen in the dataset gets 0, and when every dataset state has the same count (all
alone in their buckets, say) every conf is 0: there is no state the data supports more.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class SimHashIndex:
    projection: np.ndarray  # (k, d), A
    obs_mean: np.ndarray  # (d,), g(s) = (s − mean) / std
    obs_std: np.ndarray
    codes: np.ndarray  # (U,) sorted unique packed codes (void dtype)
    counts: np.ndarray  # (U,) int64: dataset states per code
    count_min: int  # min and max of the count over the dataset's states
    count_max: int
    seed: int

    @classmethod
    def build(
        cls,
        states: np.ndarray,
        k: int = 50,
        seed: int = 0,
        obs_mean: np.ndarray | None = None,
        obs_std: np.ndarray | None = None,
        projection: np.ndarray | None = None,
    ) -> SimHashIndex:
        """Index ``states``: A drawn from ``seed`` (or given); g = ``(s − obs_mean)/obs_std``,
        by default the states' own mean and std + 1e-3 (TD3+BC's normalisation)."""
        states = np.asarray(states, dtype=np.float64)
        obs_mean = states.mean(axis=0) if obs_mean is None else np.asarray(obs_mean, dtype=np.float64)
        obs_std = states.std(axis=0) + 1e-3 if obs_std is None else np.asarray(obs_std, dtype=np.float64)
        if projection is None:
            projection = np.random.default_rng(seed).standard_normal((k, states.shape[1]))
        index = cls(projection, obs_mean, obs_std, np.empty(0, dtype=_void(k)), np.empty(0, np.int64), 0, 0, seed)
        codes, counts = np.unique(index.code(states), return_counts=True)
        per_state = counts[np.searchsorted(codes, index.code(states))]
        index.codes, index.counts = codes, counts
        index.count_min, index.count_max = int(per_state.min()), int(per_state.max())
        return index

    @property
    def k(self) -> int:
        return self.projection.shape[0]

    def bits(self, states: np.ndarray) -> np.ndarray:
        """The sign bits sgn(A·g(s)) as booleans, ``(N, k)``; sgn(0) counts as positive."""
        g = (np.asarray(states, dtype=np.float64) - self.obs_mean) / self.obs_std
        return g @ self.projection.T >= 0

    def code(self, states: np.ndarray) -> np.ndarray:
        """Packed codes, one opaque value per state (comparable, sortable, hashable)."""
        packed = np.packbits(self.bits(states), axis=1)
        return np.ascontiguousarray(packed).view(_void(self.k)).ravel()

    def count(self, states: np.ndarray) -> np.ndarray:
        """Exact number of dataset states sharing each state's code (0 if none)."""
        codes = self.code(states)
        pos = np.searchsorted(self.codes, codes).clip(max=len(self.codes) - 1)
        return np.where(self.codes[pos] == codes, self.counts[pos], 0)

    def conf(self, states: np.ndarray) -> np.ndarray:
        """Min-max normalised count in [0, 1]; 0 for unseen codes and when all counts are equal."""
        span = self.count_max - self.count_min
        if span == 0:
            return np.zeros(len(states))
        return np.clip((self.count(states) - self.count_min) / span, 0.0, 1.0)

    def state_conf(self) -> np.ndarray:
        """conf of every dataset state, from the bucket counts alone (a bucket of c states gives c values)."""
        per_state = np.repeat(self.counts, self.counts)
        span = self.count_max - self.count_min
        return np.zeros(len(per_state)) if span == 0 else (per_state - self.count_min) / span

    def summary(self) -> dict[str, object]:
        """Bucket statistics: how many buckets hold how many states, and the spread of conf."""
        sizes, buckets = np.unique(self.counts, return_counts=True)
        conf = self.state_conf()
        return {
            "k": self.k,
            "seed": self.seed,
            "states": int(self.counts.sum()),
            "buckets": len(self.counts),
            "states_alone": int((self.counts == 1).sum()),
            "fraction_alone": float((self.counts == 1).sum() / self.counts.sum()),
            "bucket_size_histogram": {int(c): int(n) for c, n in zip(sizes, buckets)},
            "conf_mean": float(conf.mean()),
            "conf_quantiles": {str(q): float(np.quantile(conf, q)) for q in (0.1, 0.5, 0.9, 0.99)},
        }

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            projection=self.projection,
            obs_mean=self.obs_mean,
            obs_std=self.obs_std,
            codes=self.codes.view(np.uint8).reshape(len(self.codes), -1),
            counts=self.counts,
            count_range=np.array([self.count_min, self.count_max]),
            seed=np.array(self.seed),
        )

    @classmethod
    def load(cls, path: str | Path) -> SimHashIndex:
        with np.load(path) as z:
            k = z["projection"].shape[0]
            codes = np.ascontiguousarray(z["codes"]).view(_void(k)).ravel()
            return cls(
                z["projection"],
                z["obs_mean"],
                z["obs_std"],
                codes,
                z["counts"],
                int(z["count_range"][0]),
                int(z["count_range"][1]),
                int(z["seed"]),
            )


def _void(k: int) -> np.dtype:
    return np.dtype((np.void, (k + 7) // 8))

"""The SimHash figure: how states fall into buckets, and the conf(s) they get."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from offrl.simhash import SimHashIndex


def plot_conf(index_paths: Sequence[str | Path], names: Sequence[str], stem: str | Path) -> None:
    """Left: states per bucket (how many states share their code); right: conf(s) over dataset states."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sizes, confs = [], []
    for path, name in zip(index_paths, names):
        index = SimHashIndex.load(path)
        per_state = np.repeat(index.counts, index.counts)
        sizes.append(pd.DataFrame({"dataset": name, "states sharing the code": per_state}))
        confs.append(pd.DataFrame({"dataset": name, "conf(s)": index.state_conf()}))
        k = index.k
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.ecdfplot(data=pd.concat(sizes), x="states sharing the code", hue="dataset", ax=left, log_scale=True)
    left.set_ylabel("fraction of dataset states")
    left.set_title(f"SimHash buckets, k = {k}")
    sns.ecdfplot(data=pd.concat(confs), x="conf(s)", hue="dataset", ax=right, legend=False)
    right.set_ylabel("fraction of dataset states")
    right.set_xlim(-0.02, 1.02)
    right.set_title("min-max normalised count conf(s)")
    fig.tight_layout()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        fig.savefig(stem.with_suffix(suffix), dpi=150)
    plt.close(fig)

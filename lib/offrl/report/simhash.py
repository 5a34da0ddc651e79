"""The SimHash figure: how states fall into buckets, and the conf(s) they get."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from offrl.files import write_csv
from offrl.report.figures import save_figure
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
    save_figure(fig, stem)
    # The curves' numbers: how many states share a code of each size, per dataset.
    table = pd.concat(sizes).value_counts(["dataset", "states sharing the code"]).rename("states").reset_index()
    write_csv(table.sort_values(["dataset", "states sharing the code"]), Path(stem).with_suffix(".csv"), index=False)


def plot_conf_histograms(index_paths: Sequence[str | Path], names: Sequence[str], stem: str | Path) -> None:
    """One panel per dataset: histogram of conf(s) over its states (log counts), median in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.3 * rows), squeeze=False, sharex=True)
    bins = np.linspace(0.0, 1.0, 21)
    counts = []
    for ax, path, name in zip(axes.flat, index_paths, names):
        conf = SimHashIndex.load(path).state_conf()
        ax.hist(conf, bins=bins, color="tab:blue")
        counts.append(
            pd.DataFrame(
                {"dataset": name, "conf_low": bins[:-1], "conf_high": bins[1:], "states": np.histogram(conf, bins)[0]}
            )
        )
        ax.set_yscale("log")
        ax.set_title(f"{name}\nmedian conf {np.median(conf):.2f}", fontsize=8)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("conf(s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("states")
    fig.tight_layout()
    save_figure(fig, stem)
    write_csv(pd.concat(counts, ignore_index=True), Path(stem).with_suffix(".csv"), index=False)

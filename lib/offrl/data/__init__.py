"""Datasets: one in-memory type, Minari storage, local D4RL-protocol generation, download."""

from offrl.data.dataset import Dataset, DatasetError, load_dataset

__all__ = ["Dataset", "DatasetError", "load_dataset"]

"""One file per algorithm; the batch, checkpointing and the algorithm protocol in ``offrl.algos.base``; shared networks
in ``offrl.nets``."""

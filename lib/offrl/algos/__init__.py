"""One file per algorithm; shared pieces live in ``offrl.nets``, ``offrl.data`` and ``offrl.train``."""

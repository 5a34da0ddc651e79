"""What every algorithm shares with the loops that train it: the minibatch, checkpointing, the protocol.

The lowest piece of ``offrl.algos``: algorithms import it, and so do the loops above them
(:mod:`offrl.train` offline, :mod:`offrl.online` for the behaviour policies, SAFER's downstream SAC),
so no algorithm imports a loop.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


@dataclass
class Batch:
    """One minibatch per seed: ``obs`` is ``(S, B, obs_dim)``, rewards ``(S, B)``."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    not_done: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # per-transition values an algorithm asked for


class Checkpointed:
    """``state_dict``/``load_state_dict`` of an algorithm, written once.

    ``checkpointed`` names its modules and optimisers; ``checkpointed_values`` its other state:
    tensors (copied in place, so optimisers keep pointing at them) and plain numbers.
    """

    checkpointed: tuple[str, ...] = ()
    checkpointed_values: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        state = {name: getattr(self, name).state_dict() for name in self.checkpointed}
        for name in self.checkpointed_values:
            value = getattr(self, name)
            state[name] = value.detach().clone() if isinstance(value, torch.Tensor) else value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.checkpointed:
            getattr(self, name).load_state_dict(state[name])
        for name in self.checkpointed_values:
            if isinstance(getattr(self, name), torch.Tensor):
                with torch.no_grad():
                    getattr(self, name).copy_(state[name])
            else:
                setattr(self, name, state[name])


class OfflineAlgorithm(Checkpointed):
    """The base of every algorithm: checkpointing, and the defaults of what an algorithm may add.

    An algorithm overrides ``per_transition(dataset) -> {name: array}`` (values it needs alongside each
    transition, in ``Batch.extras``), ``plan(total_steps)`` (phases that are a share of the run, BEAR's
    warm-up), ``capture_variant(update)`` (the branches an update takes, :mod:`offrl.capture`) and
    ``q_values(obs, actions) -> (S, n)`` (the Q its actor maximises: snapshots then keep the modules it
    reads, for the Q diagnostic of :mod:`offrl.qdiagnostic`; :func:`has_q_values` tells whether it does).
    """

    def per_transition(self, dataset: Any) -> dict[str, Any]:
        """Per-transition values the algorithm needs in ``Batch.extras``: none."""
        return {}

    def plan(self, total_steps: int) -> None:
        """Told the run's length by the training loop: no phase depends on it."""

    def capture_variant(self, update: int) -> Hashable:
        """The branches the ``update``-th update takes: always the same."""
        return None

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(S, n) the Q the actor maximises: an algorithm without a critic (BC) has none."""
        raise NotImplementedError(f"{type(self).__name__} has no critic")


def has_q_values(algo: Any) -> bool:
    """Whether ``algo`` has a critic whose Q its actor maximises (overrides :meth:`OfflineAlgorithm.q_values`)."""
    return getattr(type(algo), "q_values", OfflineAlgorithm.q_values) is not OfflineAlgorithm.q_values


class Algorithm(Protocol):
    """What :func:`offrl.train.train` calls on an algorithm (seeds are the leading member dimension ``S``);
    the optional parts have their defaults in :class:`OfflineAlgorithm`.
    """

    normalize_states: bool  # train on states normalised by the dataset's mean and std
    config: Any  # its config dataclass, written to the run's config.json
    actor: nn.Module  # the evaluation policy, one of offrl.policies.POLICIES: a snapshot keeps its state

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on every member; each log value is ``(S,)``."""
        ...

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """The actions of every member's evaluation policy, ``(S, n, act_dim)`` for ``(S, n, obs_dim)``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

"""What every algorithm shares with the loops that train it: the minibatch, checkpointing, the protocol.

The lowest piece of ``offrl.algos``: algorithms import it, and so do the loops above them
(:mod:`offrl.train` offline, :mod:`offrl.online` for the behaviour policies, SAFER's downstream SAC),
so no algorithm imports a loop.
"""

from __future__ import annotations

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


class Algorithm(Protocol):
    """What :func:`offrl.train.train` calls on an algorithm (seeds are the leading member dimension ``S``).

    Optional, looked up with ``hasattr``: ``per_transition(dataset) -> {name: array}`` (values it needs
    alongside each transition, in ``Batch.extras``), ``plan(total_steps)`` (phases that are a share of the
    run, BEAR's warm-up) and ``q_values(obs, actions) -> (S, n)`` (the Q its actor maximises: snapshots
    then keep the modules it reads, for the Q diagnostic of :mod:`offrl.qdiagnostic`).
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

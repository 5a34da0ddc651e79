"""BEAR-QL (d4rl_evaluations), CQL, Fisher-BRC, UWAC, BRAC-p and BRAC-v through the shared loop: resume equality and
member independence."""

import pytest
import torch

from offrl.algos.base import Batch
from offrl.algos.presets import _classes, build
from offrl.train import train
from tests.conftest import assert_same_run

SMALL = {
    "bear_d4rl": {"hidden": [8, 8], "vae_hidden": [8, 8], "eval_samples": 5, "warmup_fraction": 0.25},
    "cql": {"hidden": [8, 8], "bc_warmup_fraction": 0.25},
    "fisher_brc": {"hidden": [8, 8], "behaviour_hidden": [8, 8]},
    "uwac": {"hidden": [8, 8], "vae_hidden": [8, 8], "dropout_samples": 3, "warmup_fraction": 0.25},
    "brac_p": {"actor_hidden": [8], "critic_hidden": [8], "behaviour_hidden": [8], "warmup_fraction": 0.25},
    "brac_v": {"actor_hidden": [8], "critic_hidden": [8], "behaviour_hidden": [8], "warmup_fraction": 0.25},
}


@pytest.mark.parametrize("preset", sorted(SMALL))
def test_checkpoint_then_resume_equals_an_uninterrupted_run(
    preset, tiny_dataset, tmp_path, monkeypatch, one_thread, cpu_config
):
    config = cpu_config(
        steps=12, eval_every=4, log_every=2, batch_size=4, algorithm=preset, seeds=(0, 1), options=SMALL[preset]
    )
    train(tiny_dataset, config, tmp_path / "straight", checkpoint=tmp_path / "straight.ckpt", progress=False)

    cls = _classes(preset)[0]
    original, calls = cls.update, []

    def crash_at_step_10(self, batch):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt("killed")
        return original(self, batch)

    monkeypatch.setattr(cls, "update", crash_at_step_10)
    checkpoint = tmp_path / "resumed.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_dataset, config, tmp_path / "resumed", checkpoint=checkpoint, progress=False)
    assert torch.load(checkpoint, weights_only=False)["step"] == 8  # past the behaviour phase and the warm-up
    monkeypatch.setattr(cls, "update", original)
    record = train(tiny_dataset, config, tmp_path / "resumed", checkpoint=checkpoint, progress=False)
    assert record["resumed_from_step"] == 8

    assert_same_run(tmp_path / "straight", tmp_path / "resumed", [4, 8, 12])


def grown_batch(members: int) -> Batch:
    g = torch.Generator().manual_seed(1)
    parts = (
        torch.randn(1, 16, 3, generator=g),
        torch.rand(1, 16, 2, generator=g) * 2 - 1,
        torch.randn(1, 16, generator=g),
        torch.randn(1, 16, 3, generator=g),
        torch.ones(1, 16),
    )
    return Batch(*(x.expand(members, *x.shape[1:]).clone() for x in parts))


@pytest.mark.parametrize("preset", sorted(SMALL))
def test_a_seed_does_not_depend_on_its_group(preset, one_thread):
    def run(seeds):
        algo = build(
            preset, 3, 2, [torch.Generator().manual_seed(s) for s in seeds], torch.device("cpu"), SMALL[preset]
        )
        algo.plan(8)  # both phases (and the warm-ups) within the 8 steps
        for _ in range(8):
            algo.update(grown_batch(len(seeds)))
        return algo

    alone, grouped = run((5,)), run((9, 5))

    def models(algo):  # the actor and the behaviour model of each (BEAR's and UWAC's VAE; CQL has none)
        if preset in ("bear_d4rl", "uwac"):
            return algo.pi, algo.vae
        return (algo.actor,) if preset == "cql" else (algo.actor, algo.behaviour.model)

    for net_alone, net_grouped in zip(models(alone), models(grouped)):
        for pa, pg in zip(net_alone.parameters(), net_grouped.parameters()):
            torch.testing.assert_close(pa[0], pg[1])
    for pa, pg in zip(alone.critic.parameters(), grouped.critic.parameters()):
        torch.testing.assert_close(pa[[0, 1]], pg[[1, 3]])  # critic i of seed s is member i·S + s

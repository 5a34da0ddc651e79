"""BCQ: its policy picks the best perturbed VAE sample by Q₁; its update runs and logs."""

import torch

from offrl.algos.base import Batch
from offrl.algos.bcq import BCQ, BCQConfig
from offrl.nets import BCQPolicy


def test_policy_picks_the_argmax_of_q1_among_its_samples():
    torch.manual_seed(0)
    policy = BCQPolicy(2, 3, 2, (8,), (8,), latent_dim=4, phi=0.05, samples=10)
    obs = torch.randn(2, 6, 3)
    policy.reseed(7)
    chosen = policy(obs)
    # The same candidates, drawn again from the same seed, ranked here.
    g = torch.Generator().manual_seed(7)
    repeated = obs.repeat_interleave(10, dim=1)
    latent = torch.randn((2, 60, 4), generator=g).clamp(-0.5, 0.5)
    candidates = policy.perturbation(repeated, policy.vae.decode(repeated, latent))
    q1 = policy.critic(repeated, candidates, members=slice(0, 2)).view(2, 6, 10)
    best = candidates.view(2, 6, 10, 2)[torch.arange(2)[:, None], torch.arange(6)[None, :], q1.argmax(dim=2)]
    torch.testing.assert_close(chosen, best)
    assert not torch.equal(chosen, candidates.view(2, 6, 10, 2)[:, :, 0])  # not merely the first sample
    policy.reseed(7)
    torch.testing.assert_close(policy(obs), chosen)  # reseeded: the same actions


def test_update_logs_and_perturbation_stays_within_phi():
    gens = [torch.Generator().manual_seed(0)]
    algo = BCQ(3, 2, gens, BCQConfig(hidden=(16, 16), vae_hidden=(16, 16)), torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    batch = Batch(
        torch.randn(1, 16, 3, generator=g),
        torch.rand(1, 16, 2, generator=g) * 2 - 1,
        torch.randn(1, 16, generator=g),
        torch.randn(1, 16, 3, generator=g),
        torch.ones(1, 16),
    )
    for _ in range(3):
        logs = algo.update(batch)
    assert {"vae_loss", "critic_loss", "q_mean", "actor_loss"} <= set(logs)
    actions = torch.rand(1, 16, 2, generator=g) * 1.8 - 0.9
    assert (algo.perturbation(batch.obs, actions) - actions).abs().max() <= 0.05 + 1e-6


def test_evaluation_draws_the_references_100_candidates():
    from offrl.algos.presets import build

    bcq = build(
        "bcq", 3, 2, [torch.Generator().manual_seed(0)], torch.device("cpu"), {"hidden": (8,), "vae_hidden": (8,)}
    )
    assert bcq.config.policy_samples == 100 and bcq.actor.spec["samples"] == 100  # sfujim/BCQ's select_action

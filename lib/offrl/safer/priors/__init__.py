"""Behavioural priors for SAFER and PARROT: the flow, the safety variable, the safety bound."""

from offrl.safer.priors.assurance import safety_bound, unsafe_fraction_within
from offrl.safer.priors.context import SafetyContextEncoder, kl_to_standard_normal, sample_context
from offrl.safer.priors.flow import ConditionalRealNVP, standard_normal_log_prob
from offrl.safer.priors.latent import (
    LATENT_MAPS,
    bounded_latent,
    bounded_map,
    gaussian_latent,
    truncated_gaussian_latent,
)
from offrl.safer.priors.model import SkillPrior, load_prior, save_prior

__all__ = [
    "LATENT_MAPS",
    "ConditionalRealNVP",
    "SafetyContextEncoder",
    "SkillPrior",
    "bounded_latent",
    "bounded_map",
    "gaussian_latent",
    "kl_to_standard_normal",
    "load_prior",
    "safety_bound",
    "save_prior",
    "sample_context",
    "standard_normal_log_prob",
    "truncated_gaussian_latent",
    "unsafe_fraction_within",
]

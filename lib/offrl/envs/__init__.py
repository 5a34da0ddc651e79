"""Environment factories and the facts the papers need about each environment."""

from offrl.envs.specs import ENV_SPECS, EnvSpec, env_spec, make_env, normalized_score

__all__ = ["ENV_SPECS", "EnvSpec", "env_spec", "make_env", "normalized_score"]

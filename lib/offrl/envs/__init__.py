"""The D4RL MuJoCo environments: factories and the facts the papers need about each (reference scores).

Below ``offrl.data``, which names them; SAFER's grasp task lives in ``offrl.safer.grasp``.
"""

from offrl.envs.specs import ENV_SPECS, EnvSpec, env_spec, make_env, normalized_score

__all__ = ["ENV_SPECS", "EnvSpec", "env_spec", "make_env", "normalized_score"]

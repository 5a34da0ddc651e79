"""The D4RL environments: factories and the facts the papers need about each (reference scores).

The MuJoCo locomotion tasks and the Adroit hand tasks (gymnasium-robotics). Below ``offrl.data``,
which names them; SAFER's grasp task lives in ``offrl.safer.grasp``.
"""

from offrl.envs.specs import (
    ADROIT_ENVS,
    ADROIT_KINDS,
    ENV_SPECS,
    EnvSpec,
    env_spec,
    make_env,
    minari_remote_id,
    normalized_score,
)

__all__ = [
    "ADROIT_ENVS",
    "ADROIT_KINDS",
    "ENV_SPECS",
    "EnvSpec",
    "env_spec",
    "make_env",
    "minari_remote_id",
    "normalized_score",
]

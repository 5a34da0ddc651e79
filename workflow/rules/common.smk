# Shared wildcard constraints and target lists.


ENVS = config["envs"]
KINDS = config["datasets"]["kinds"]


wildcard_constraints:
    env="hopper|walker2d|halfcheetah",
    kind="random|medium-replay|medium-expert|medium|expert",


def dataset_summaries():
    return expand("resources/datasets/{env}-{kind}.json", env=ENVS, kind=KINDS)


def dataset_dir(env, kind):
    return f"resources/minari/offrl/{env}/{kind}-v0"


def collect_inputs(wildcards):
    """What generating one dataset needs: a policy, the replay buffer, or the two datasets it joins."""
    policies = f"resources/behaviour/{wildcards.env}"
    if wildcards.kind in ("medium", "expert"):
        return {"policy": f"{policies}/{wildcards.kind}.pt"}
    if wildcards.kind == "medium-replay":
        return {"replay": f"{policies}/replay_medium.npz"}
    if wildcards.kind == "medium-expert":
        return {
            "medium": dataset_dir(wildcards.env, "medium"),
            "expert": dataset_dir(wildcards.env, "expert"),
        }
    return {}

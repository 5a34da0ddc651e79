# The data stage's constants and input functions (its rules: datasets.smk, which includes this file).

# The locomotion envs' datasets are generated here (source: local) or downloaded (source: minari);
# the Adroit tasks' are always downloaded: D4RL's data, or stand-ins built here (taming.adroit.source).
ADROIT = config["taming"]["adroit"]
# Every Adroit dataset the run downloads, named together by a download that fails.
ADROIT_REMOTE_IDS = [minari_remote_id(env, kind) for env in ADROIT["envs"] for kind in ADROIT_KINDS]
LOCOMOTION_ENVS = [env for env in ENV_SPECS if env not in ADROIT_ENVS]
DOWNLOADED_ENVS = [*ADROIT_ENVS, *(LOCOMOTION_ENVS if DATASETS["source"] == "minari" else [])]
ADROIT_STANDIN_ROOT = "resources/standin"


def remote_id(wildcards):
    """A downloaded dataset's Minari id: the config's minari_ids for a locomotion env, the registry's for Adroit."""
    if wildcards.env in ADROIT_ENVS:
        return minari_remote_id(wildcards.env, wildcards.kind)
    return DATASETS["minari_ids"][f"{wildcards.env}-{wildcards.kind}"]


def download_inputs(wildcards):
    """An Adroit stand-in, where the config asks for them, is built first and then taken as if placed by hand."""
    if wildcards.env in ADROIT_ENVS and ADROIT["source"] == "standin":
        return [f"{ADROIT_STANDIN_ROOT}/{remote_id(wildcards)}"]
    return []

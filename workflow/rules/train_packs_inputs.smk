# What the pack rules (train_packs.smk) are made of: the packs of the runs every rule named, and their cost.


RUN_FILES = ("snapshots.pt", "train_log.csv", "config.json")


def pack_key(algo, dataset):
    """Runs that may share a process: one algorithm, env and budget; Guided TD3+BC's never (an index per dataset)."""
    if preset_of(VARIANTS, algo) in GUIDED_ALGORITHMS:
        return None
    return algo, dataset.split("-", 1)[0], steps_of(dataset)


TRAIN_PACKS = pack_runs(sorted(NAMED_RUNS), OFFLINE["pack_members"], pack_key)


def pack_members(pack):
    return sum(len(seeds.split("-")) for _, _, seeds in pack)


def pack_runtime(pack):
    """Its runs' steps × members on the CPU; on a GPU its steps, a step training every member, at the pack's size."""
    algo, dataset, _ = pack[0]
    gpu = TRAIN_DEVICE != "cpu"
    members = pack_members(pack)
    return runtime_min(
        "train_offline",
        steps_of(dataset) * (1 if gpu else members),
        name=algo,
        preset=preset_of(VARIANTS, algo),
        batch=batch_size(OFFLINE, VARIANTS, algo),
        gpu=gpu,
        members=members,
    )

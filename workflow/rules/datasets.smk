# Data stage: behaviour policies, then D4RL-protocol datasets (generated here or downloaded).

BEHAVIOUR = config["behaviour"]
DATASETS = config["datasets"]
BEHAVIOUR_FILES = ["expert.pt", "medium.pt", "replay_medium.npz", "evaluations.csv", "manifest.json"]


if BEHAVIOUR["source"] == "train":

    rule behaviour_policy:
        """TD3 online; keeps the expert, the medium policy and the replay buffer up to it."""
        output:
            expert="resources/behaviour/{env}/expert.pt",
            medium="resources/behaviour/{env}/medium.pt",
            replay="resources/behaviour/{env}/replay_medium.npz",
            evaluations="resources/behaviour/{env}/evaluations.csv",
            manifest="resources/behaviour/{env}/manifest.json",
        params:
            out=subpath(output.manifest, parent=True),
            total_steps=BEHAVIOUR["total_steps"],
            start_steps=BEHAVIOUR["start_steps"],
            eval_every=BEHAVIOUR["eval_every"],
            eval_episodes=BEHAVIOUR["eval_episodes"],
            seed=BEHAVIOUR["seed"],
        threads: BEHAVIOUR["threads"]
        resources:
            mem_mb=8000,
            runtime=24 * 60,
        log:
            "logs/behaviour/{env}.log",
        benchmark:
            "logs/benchmarks/behaviour/{env}.tsv"
        conda:
            "../../envs/offrl.yaml"
        shell:
            "python -m offrl --threads {threads} behaviour --env {wildcards.env} --out {params.out}"
            " --total-steps {params.total_steps} --start-steps {params.start_steps}"
            " --eval-every {params.eval_every} --eval-episodes {params.eval_episodes}"
            " --seed {params.seed} > {log} 2>&1"

else:

    rule shipped_behaviour_policy:
        """The small TD3 policies committed under resources/shipped (see their manifest.json)."""
        input:
            expand(SHIPPED / "behaviour/{{env}}/{file}", file=BEHAVIOUR_FILES),
        output:
            expand("resources/behaviour/{{env}}/{file}", file=BEHAVIOUR_FILES),
        params:
            out=subpath(output[0], parent=True),
        log:
            "logs/behaviour/{env}.log",
        conda:
            "../../envs/offrl.yaml"
        shell:
            "cp {input} {params.out}/ > {log} 2>&1"


if DATASETS["source"] == "local":

    rule collect_dataset:
        """Roll a behaviour policy out into a D4RL-kind dataset, stored in Minari format."""
        input:
            unpack(collect_inputs),
        output:
            dataset=directory("resources/minari/offrl/{env}/{kind}-v0"),
            summary="resources/datasets/{env}-{kind}.json",
        params:
            behaviour="resources/behaviour/{env}",
            size=DATASETS["size"],
            seed=DATASETS["seed"],
            noise=DATASETS["noise"],
        resources:
            mem_mb=4000,
        log:
            "logs/datasets/{env}-{kind}.log",
        benchmark:
            "logs/benchmarks/datasets/{env}-{kind}.tsv"
        conda:
            "../../envs/offrl.yaml"
        shell:
            "python -m offrl collect --env {wildcards.env} --kind {wildcards.kind}"
            " --behaviour {params.behaviour} --size {params.size} --seed {params.seed}"
            " --noise {params.noise} --root resources/minari --summary {output.summary}"
            " --quiet > {log} 2>&1"

else:

    rule download_dataset:
        """Fetch a remote Minari dataset (needs network; fails at once without)."""
        output:
            dataset=directory("resources/minari/offrl/{env}/{kind}-v0"),
            summary="resources/datasets/{env}-{kind}.json",
        params:
            remote_id=lambda wildcards: DATASETS["minari_ids"][f"{wildcards.env}-{wildcards.kind}"],
        log:
            "logs/datasets/{env}-{kind}.log",
        conda:
            "../../envs/offrl.yaml"
        shell:
            "python -m offrl download --remote-id {params.remote_id} --env {wildcards.env}"
            " --kind {wildcards.kind} --root resources/minari --summary {output.summary} > {log} 2>&1"

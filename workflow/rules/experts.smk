# Online TD3: the behaviour policies that generate the datasets, and Guided TD3+BC's safety experts.

BEHAVIOUR = config["behaviour"]
BEHAVIOUR_FILES = ["expert.pt", "medium.pt", "replay_medium.npz", "evaluations.csv", "manifest.json"]


if BEHAVIOUR["source"] == "train":

    rule behaviour_policy:
        """TD3 online (on offline.device); keeps the expert, the medium policy and the replay buffer up to it."""
        output:
            expert="resources/behaviour/{env}/expert.pt",
            medium="resources/behaviour/{env}/medium.pt",
            replay="resources/behaviour/{env}/replay_medium.npz",
            evaluations="resources/behaviour/{env}/evaluations.csv",
            manifest="resources/behaviour/{env}/manifest.json",
        log:
            "logs/behaviour/{env}.log",
        benchmark:
            "logs/benchmarks/behaviour/{env}.tsv"
        conda:
            CONDA_ENV
        threads: BEHAVIOUR["threads"]
        resources:
            gpu=TRAIN_GPU,
            mem_mb=mem_mb(BEHAVIOUR["total_steps"], extra_mb=TRAIN_CUDA_MB),  # the replay buffer holds every step
            runtime=online_runtime("behaviour_policy", BEHAVIOUR),
        params:
            out=subpath(output.manifest, parent=True),
            total_steps=BEHAVIOUR["total_steps"],
            start_steps=BEHAVIOUR["start_steps"],
            eval_every=BEHAVIOUR["eval_every"],
            eval_episodes=BEHAVIOUR["eval_episodes"],
            seed=BEHAVIOUR["seed"],
            device=TRAIN_DEVICE,
            capture=OFFLINE["capture"],
            jobs_per_gpu=OFFLINE["jobs_per_gpu"],
        shell:
            "python -m offrl --threads {threads} --device {params.device} --capture {params.capture}"
            " --jobs-per-gpu {params.jobs_per_gpu} behaviour --env {wildcards.env} --out {params.out}"
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
        log:
            "logs/behaviour/{env}.log",
        benchmark:
            "logs/benchmarks/behaviour/{env}.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=LIGHT_MEM_MB,
            runtime=LIGHT_RUNTIME,
        params:
            out=subpath(output[0], parent=True),
        shell:
            "cp {input} {params.out}/ > {log} 2>&1"


SAFETY = GUIDED["safety_expert"]
SAFETY_FILES = ["expert.pt", "evaluations.csv", "manifest.json"]


if SAFETY["source"] == "train":

    rule safety_expert:
        """TD3 online (on offline.device) with the extra control cost ctrl_cost_weight·Σa² per step (Guided TD3+BC's π_T)."""
        output:
            expert="resources/safety_expert/{env}/expert.pt",
            evaluations="resources/safety_expert/{env}/evaluations.csv",
            manifest="resources/safety_expert/{env}/manifest.json",
        log:
            "logs/safety_expert/{env}.log",
        benchmark:
            "logs/benchmarks/safety_expert/{env}.tsv"
        conda:
            CONDA_ENV
        threads: SAFETY["threads"]
        resources:
            gpu=TRAIN_GPU,
            mem_mb=mem_mb(SAFETY["total_steps"], extra_mb=TRAIN_CUDA_MB),
            runtime=online_runtime("safety_expert", SAFETY),
        params:
            out=subpath(output.manifest, parent=True),
            total_steps=SAFETY["total_steps"],
            start_steps=SAFETY["start_steps"],
            eval_every=SAFETY["eval_every"],
            eval_episodes=SAFETY["eval_episodes"],
            ctrl_cost_weight=lambda wildcards: SAFETY["ctrl_cost_weight"][wildcards.env],
            seed=SAFETY["seed"],
            device=TRAIN_DEVICE,
            capture=OFFLINE["capture"],
            jobs_per_gpu=OFFLINE["jobs_per_gpu"],
        shell:
            "python -m offrl --threads {threads} --device {params.device} --capture {params.capture}"
            " --jobs-per-gpu {params.jobs_per_gpu} behaviour --env {wildcards.env} --out {params.out}"
            " --total-steps {params.total_steps} --start-steps {params.start_steps}"
            " --eval-every {params.eval_every} --eval-episodes {params.eval_episodes}"
            " --ctrl-cost-weight {params.ctrl_cost_weight} --expert-only --seed {params.seed} > {log} 2>&1"

else:

    rule shipped_safety_expert:
        """The safety experts committed under resources/shipped (see their manifest.json)."""
        input:
            expand(SHIPPED / "safety_expert/{{env}}/{file}", file=SAFETY_FILES),
        output:
            expand("resources/safety_expert/{{env}}/{file}", file=SAFETY_FILES),
        log:
            "logs/safety_expert/{env}.log",
        benchmark:
            "logs/benchmarks/safety_expert/{env}.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=LIGHT_MEM_MB,
            runtime=LIGHT_RUNTIME,
        params:
            out=subpath(output[0], parent=True),
        shell:
            "cp {input} {params.out}/ > {log} 2>&1"

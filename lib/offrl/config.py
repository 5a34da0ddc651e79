"""Checks on a pipeline configuration that a JSON schema cannot express.

The schema (``workflow/schemas/config.schema.yaml``) checks names, types and ranges;
these checks look across fields and at the files a config relies on. Both run in the
Snakefile before any job starts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

SHIPPED_FILES = ("expert.pt", "medium.pt", "replay_medium.npz", "manifest.json")
SHIPPED_SAFETY_FILES = ("expert.pt", "evaluations.csv", "manifest.json")
# Presets whose runs need a safety expert and a SimHash index.
GUIDED_ALGORITHMS = ("guided_td3bc",)


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the field and what it allows."""


# Snakemake's --config hands a nested value (`offline={steps: 5000}`) over as text; an overlay file does not.
NESTED_CONFIG_HINT = (
    "for nested keys write an overlay YAML (e.g. `offline: {steps: 5000}`) and give it after the target: "
    "`snakemake all --cores 2 --configfile config/config.yaml my.yaml` (config/README.md)"
)


# The schema of a repository checkout (the package is installed editable from lib/).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def config_variants(paths: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """The variants (TD3BC++ sweeps included) of config files merged in order, with the schema's defaults filled in.

    The files may be a partial overlay: only the variants are read here, the rest is Snakemake's to check.
    """
    config = load_config_files(paths)
    try:
        validate_config(config, SCHEMA_PATH)
    except ConfigError:
        pass
    return all_variants(config)


def load_config_files(paths: Iterable[str | Path]) -> dict[str, Any]:
    """YAML config files merged in order, as Snakemake's ``--configfile`` does: later files win, sections merge key by
    key."""
    import yaml

    merged: dict[str, Any] = {}
    for path in paths:
        _merge(merged, yaml.safe_load(Path(path).read_text()) or {})
    return merged


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def validate_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the JSON schema and fill in its defaults (as Snakemake's ``validate``).

    Raises :class:`ConfigError` with one line per problem (the field, its value, what is allowed),
    instead of jsonschema's dump of the schema.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(
        validator: Any, properties: dict[str, Any], instance: Any, subschema: dict[str, Any]
    ) -> Any:
        if isinstance(instance, dict):
            for name, spec in properties.items():
                if "default" in spec:
                    instance.setdefault(name, copy.deepcopy(spec["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    validator = jsonschema.validators.extend(base, {"properties": properties_with_defaults})(schema)
    problems = [
        _problem(error)
        for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))


def _problem(error: Any) -> str:
    """One line for a schema violation: ``field = value: allowed: ...``."""
    field = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    kind, rule, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        return f"{field}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
    if kind == "required":
        return f"{field}: {error.message}"
    bounds = {
        "minimum": ">=",
        "exclusiveMinimum": ">",
        "maximum": "<=",
        "exclusiveMaximum": "<",
        "minItems": "at least (items)",
    }
    if kind == "enum":
        allowed = ", ".join(str(option) for option in rule)
    elif kind == "type":
        allowed = f"a value of type {rule}"
    elif kind in bounds:
        allowed = f"{bounds[kind]} {rule}"
    else:
        allowed = error.message
    line = f"{field} = {value!r}: allowed: {allowed}"
    if kind == "type" and isinstance(value, str):
        line += f"; {NESTED_CONFIG_HINT}"
    return line


def shipped_envs(shipped_dir: str | Path, kind: str = "behaviour") -> list[str]:
    """Envs with a complete set of shipped ``kind`` files: ``behaviour`` policies or ``safety_expert``s."""
    root = Path(shipped_dir) / kind
    files = SHIPPED_FILES if kind == "behaviour" else SHIPPED_SAFETY_FILES
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if all((p / f).is_file() for f in files))


def check_config(config: dict[str, Any], shipped_dir: str | Path) -> None:
    """Raise :class:`ConfigError` for a config the schema accepts but the pipeline cannot run."""
    envs = config["envs"]
    if config["behaviour"]["source"] == "shipped":
        available = shipped_envs(shipped_dir)
        missing = [env for env in envs if env not in available]
        if missing:
            raise ConfigError(
                f"behaviour.source is 'shipped' but no shipped behaviour policies exist for {missing}; "
                f"shipped envs: {available}. Set behaviour.source: train, or choose envs from the shipped ones."
            )
    variants = all_variants(config)
    _check_algorithms(config, variants)
    offline = config.get("offline")
    if offline and any(preset_of(variants, algo) in GUIDED_ALGORITHMS for algo in offline["algorithms"]):
        _check_safety_experts(config["guided"]["safety_expert"], envs, shipped_dir)
        _check_guided_study(config["guided"], envs, offline["seeds"])
    if offline and offline["steps"] % offline["eval_every"]:
        raise ConfigError(
            f"offline.steps ({offline['steps']}) must be a multiple of offline.eval_every ({offline['eval_every']})"
        )
    if offline and offline["eval_every"] % offline["log_every"]:
        raise ConfigError(
            f"offline.log_every ({offline['log_every']}) must divide offline.eval_every ({offline['eval_every']})"
        )
    if offline:
        _check_d4rl_envs(offline, envs)
        _check_study_steps(config)
    taming = config.get("taming", {})
    if taming.get("envs"):
        outside = [env for env in taming["envs"] if env not in envs]
        if outside:
            raise ConfigError(f"taming.envs {outside} are not in envs {envs}")
        if not config["datasets"]["contamination"]:
            raise ConfigError(
                "taming.envs is set but datasets.contamination is empty: "
                "give the expert-random percents, e.g. [10, 30, 50, 70]"
            )
        study = taming_datasets(config, kinds=())  # the contaminated ones alone
        # Figure 6 is the only artefact that reads this dataset (absent "artefacts": the schema's default, all of them).
        if "fig6" in taming.get("artefacts", ["fig6"]) and taming["q_histogram_dataset"] not in study:
            raise ConfigError(
                f"taming.q_histogram_dataset {taming['q_histogram_dataset']!r} "
                f"is not one of the study's contaminated datasets {study}"
            )
        if "expert" not in taming.get("kinds", ["expert"]):
            raise ConfigError(
                f"taming.kinds {taming['kinds']} lacks expert: the study's contaminated datasets are made from it"
            )
        missing = [algo for algo in taming["figure_algorithms"] if algo not in taming["algorithms"]]
        if missing:
            raise ConfigError(f"taming.figure_algorithms {missing} are not in taming.algorithms {taming['algorithms']}")
    _check_adroit(config)
    _check_bear_blog(config)
    _check_q_diagnostic(config)
    _check_safer(config.get("safer"))
    datasets = config["datasets"]
    if datasets["source"] == "minari":
        ids = datasets.get("minari_ids", {})
        missing = [f"{env}-{kind}" for env in envs for kind in datasets["kinds"] if f"{env}-{kind}" not in ids]
        if missing:
            raise ConfigError(f"datasets.source is 'minari' but datasets.minari_ids has no remote id for {missing}")


def d4rl_envs(config: dict[str, Any]) -> list[str]:
    """The envs of the D4RL score table: ``offline.envs``, by default every env of the run."""
    return config["offline"].get("envs") or config["envs"]


def taming_datasets(config: dict[str, Any], kinds: Sequence[str] | None = None, contaminated: bool = True) -> list[str]:
    """The TD3BC++ study's datasets per env: the D4RL ``kinds`` (default Table 1's, taming.kinds), then
    expert-random-X."""
    taming = config.get("taming", {})
    kinds = taming.get("kinds", []) if kinds is None else kinds
    extra = [f"expert-random-{p}" for p in config["datasets"]["contamination"]] if contaminated else []
    return [f"{env}-{kind}" for env in taming.get("envs", []) for kind in [*kinds, *extra]]


def adroit_study(config: dict[str, Any]) -> dict[str, Any]:
    """The TD3BC++ study's Adroit datasets and Table 2's cells (``taming.adroit``).

    ``table2``: each task's expert dataset, then its expert-cloned-X rows; ``fig7``: the
    expert-cloned-X rows alone; ``table4``: every expert-cloned-X dataset built; ``omitted``:
    the (algorithm, dataset) cells of Table 2 the paper leaves out; ``runs``: Table 2's
    (algorithm, dataset) cells that are trained.
    """
    adroit = config.get("taming", {}).get("adroit", {})
    envs = adroit.get("envs", [])
    rows = adroit.get("table_contamination", [])
    table2 = [d for env in envs for d in [f"{env}-expert", *(f"{env}-expert-cloned-{p}" for p in rows)]]
    omitted = [
        (algo, dataset)
        for algo, tasks in adroit.get("omitted", {}).items()
        for dataset in table2
        if dataset.split("-", 1)[0] in tasks
    ]
    algorithms = adroit.get("algorithms", [])
    return {
        "envs": envs,
        "table2": table2,
        "fig7": [f"{env}-expert-cloned-{p}" for env in envs for p in rows],
        "table4": [f"{env}-expert-cloned-{p}" for env in envs for p in adroit.get("contamination", [])],
        "omitted": omitted,
        "runs": [(a, d) for a in algorithms for d in table2 if (a, d) not in omitted],
    }


def study_datasets(config: dict[str, Any]) -> dict[str, list[str]]:
    """The datasets each study trains on, by the config key that names them.

    The one place these lists are made: the Snakefile's rules read them, and the checks below compare them.
    """
    kinds = config["datasets"]["kinds"]
    guided, blog, taming = config.get("guided", {}), config.get("bear_blog", {}), config.get("taming", {})

    def on(envs: Iterable[str], kinds: Iterable[str]) -> list[str]:
        return [f"{env}-{kind}" for env in envs for kind in kinds]

    table8 = taming_datasets(config, kinds, contaminated=False) if "table8" in taming.get("artefacts", []) else []
    return {
        "offline.envs": on(d4rl_envs(config), kinds),
        "guided.envs": on(guided.get("envs", []), kinds),
        "guided.extension_envs": on(guided.get("extension_envs", []), kinds),
        "bear_blog.envs": on(blog.get("envs", []), ("medium", "expert", "random")),
        "bear_blog.figure1_envs": on(
            blog.get("figure1_envs", []), [f"expert-first{n}" for n in blog.get("figure1_sizes", [])]
        ),
        "q_diagnostic.datasets": list(config.get("q_diagnostic", {}).get("datasets", [])),
        "taming.envs": list(dict.fromkeys([*taming_datasets(config), *table8])),
        "taming.adroit.envs": adroit_study(config)["table2"],
    }


def run_steps(config: dict[str, Any]) -> dict[str, int]:
    """The training budget of the runs on each dataset whose study sets its own (``taming.steps``); others take
    offline.steps."""
    steps = config.get("taming", {}).get("steps")
    return dict.fromkeys(study_datasets(config)["taming.envs"], steps) if steps else {}


def _check_d4rl_envs(offline: dict[str, Any], envs: list[str]) -> None:
    outside = [env for env in offline.get("envs") or [] if env not in envs]
    if outside:
        raise ConfigError(f"offline.envs {outside} are not in envs {envs}")


def _check_study_steps(config: dict[str, Any]) -> None:
    """A study's own budget is a multiple of eval_every, and no run has two budgets."""
    steps, offline = config.get("taming", {}).get("steps"), config["offline"]
    if not steps:
        return
    if steps % offline["eval_every"]:
        raise ConfigError(f"taming.steps ({steps}) must be a multiple of offline.eval_every ({offline['eval_every']})")
    if steps == offline["steps"]:
        return
    others = study_datasets(config)
    study = set(others.pop("taming.envs"))
    for key, datasets in others.items():
        shared = sorted(study & set(datasets))
        if shared:
            raise ConfigError(
                f"taming.steps ({steps}) differs from offline.steps ({offline['steps']}), but {shared} are also "
                f"trained for {key}: a run has one budget; make them equal or keep the studies' datasets apart"
            )


def _check_adroit(config: dict[str, Any]) -> None:
    """Table 2's rows are among the built expert-cloned-X datasets; each omitted cell is one of its algorithms'."""
    adroit = config.get("taming", {}).get("adroit", {})
    if not adroit.get("envs"):
        return
    rows = [p for p in adroit["table_contamination"] if p not in adroit["contamination"]]
    if rows:
        raise ConfigError(
            f"taming.adroit.table_contamination {rows} are not in taming.adroit.contamination {adroit['contamination']}"
        )
    strangers = [algo for algo in adroit["omitted"] if algo not in adroit["algorithms"]]
    if strangers:
        raise ConfigError(
            f"taming.adroit.omitted names {strangers}, not in taming.adroit.algorithms {adroit['algorithms']}"
        )


def number_tag(value: float) -> str:
    """A number as it goes into a variant name: ``2.5 -> "2p5"``, ``1.0 -> "1"``, ``0.01 -> "0p01"``."""
    return f"{value:g}".replace(".", "p").replace("-", "m")


def taming_sweeps(taming: dict[str, Any]) -> dict[str, Any]:
    """The TD3BC++ paper's sweeps as variants: per figure, its algorithm names and the variants they need.

    Figure 5: TD3+BC with the gradient penalty on uniform (``td3bc_gp`` itself), dataset or
    policy actions; Figure 7: α × λ_GP of TD3+BC with the penalty; Figure 11: λ_GP of TD3BC++.
    A point that is a preset (α = 2.5 with λ = 0 is ``td3bc``) reuses the preset's runs.
    """
    variants: dict[str, dict[str, Any]] = {}

    def name(preset: str, options: dict[str, Any], default: dict[str, Any], tag: str) -> str:
        if options == {k: default[k] for k in options}:
            return preset
        variant = f"{preset}_{tag}"
        variants[variant] = {"preset": preset, "options": options}
        return variant

    fig5 = ["td3bc"] + [
        name("td3bc_gp", {"gp_actions": actions}, {"gp_actions": "uniform"}, f"{actions}_actions")
        for actions in taming["gp_action_sampling"]
    ]
    fig7_grid = []  # (name, α, λ_GP) per point
    for alpha in taming["alpha_grid"]:
        for weight in taming["alpha_grid_gp_weights"]:
            preset = "td3bc_gp" if weight > 0 else "td3bc"
            options = {"alpha": alpha, "gradient_penalty": weight} if weight > 0 else {"alpha": alpha}
            default = {"alpha": 2.5, "gradient_penalty": 1.0}
            tag = f"a{number_tag(alpha)}" + (f"_gp{number_tag(weight)}" if weight > 0 else "")
            fig7_grid.append((name(preset, options, default, tag), alpha, weight))
    fig11 = [
        name("td3bc_pp", {"gradient_penalty": w}, {"gradient_penalty": 1.0}, f"gp{number_tag(w)}")
        for w in taming["gp_weights"]
    ]
    return {
        "variants": variants,
        "fig5": fig5,
        "fig7": [point[0] for point in fig7_grid],
        "fig7_grid": fig7_grid,
        "fig11": fig11,
    }


def all_variants(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config's own variants and those the TD3BC++ study's sweeps define."""
    taming = config.get("taming", {})
    sweeping = taming.get("envs") or taming.get("adroit", {}).get("envs")
    generated = taming_sweeps(taming)["variants"] if sweeping else {}
    return {**generated, **config.get("variants", {})}


def preset_of(variants: dict[str, dict[str, Any]], algorithm: str) -> str:
    """The preset behind an algorithm name: a variant's preset (``variants`` as from :func:`all_variants`), or the name
    itself."""
    variant = variants.get(algorithm)
    return variant["preset"] if variant else algorithm


def run_options(
    config: dict[str, Any], variants: dict[str, dict[str, Any]], algorithm: str, env: str
) -> dict[str, Any]:
    """The options a run of ``algorithm`` on ``env`` is given: its variant's, then ``env_options[algorithm][env]``.

    The preset's own per-env options (``Preset.env_options``) lie below both, applied when it is built.
    """
    variant = variants.get(algorithm, {}).get("options", {})
    return {**variant, **config.get("env_options", {}).get(algorithm, {}).get(env, {})}


def batch_size(offline: dict[str, Any], variants: dict[str, dict[str, Any]], algorithm: str) -> int:
    """An algorithm's minibatch size: its own in ``offline.batch_sizes``, else its preset's there, else
    ``offline.batch_size``."""
    sizes = offline.get("batch_sizes", {})
    return sizes.get(algorithm, sizes.get(preset_of(variants, algorithm), offline["batch_size"]))


def _check_algorithms(config: dict[str, Any], variants: dict[str, dict[str, Any]]) -> None:
    from offrl.algos.presets import PRESETS, check_options

    clashes = sorted(set(variants) & set(PRESETS))
    if clashes:
        raise ConfigError(f"variants {clashes} have the names of presets; choose other names")
    for name, variant in variants.items():
        try:
            check_options(variant["preset"], variant.get("options", {}))
        except ValueError as error:
            raise ConfigError(f"variants.{name}: {error}") from None
    allowed = f"presets {sorted(PRESETS)} and variants {sorted(variants)}"
    for name, per_env in config.get("env_options", {}).items():
        if name not in PRESETS and name not in variants:
            raise ConfigError(f"env_options.{name}: unknown algorithm; allowed: {allowed}")
        for env, options in per_env.items():
            try:
                check_options(preset_of(variants, name), {**variants.get(name, {}).get("options", {}), **options})
            except ValueError as error:
                raise ConfigError(f"env_options.{name}.{env}: {error}") from None
    lists = (
        ("offline", "algorithms"),
        ("taming", "algorithms"),
        ("taming", "figure_algorithms"),
        ("taming", "ablation_algorithms"),
        ("taming", "table8_algorithms"),
        ("bear_blog", "algorithms"),
        ("bear_blog", "figure1_algorithms"),
        ("q_diagnostic", "algorithms"),
    )
    sized = [
        name
        for name in config.get("offline", {}).get("batch_sizes", {})
        if name not in PRESETS and name not in variants
    ]
    if sized:
        raise ConfigError(f"offline.batch_sizes: unknown algorithm(s) {sized}; allowed: {allowed}")
    named = {f"{section}.{key}": config.get(section, {}).get(key, []) for section, key in lists}
    named["taming.adroit.algorithms"] = config.get("taming", {}).get("adroit", {}).get("algorithms", [])
    for where, names in named.items():
        unknown = [name for name in names if name not in PRESETS and name not in variants]
        if unknown:
            raise ConfigError(f"{where}: unknown algorithm(s) {unknown}; allowed: {allowed}")


def _check_bear_blog(config: dict[str, Any]) -> None:
    blog = config.get("bear_blog", {})
    for key in ("envs", "figure1_envs"):
        outside = [env for env in blog.get(key, []) if env not in config["envs"]]
        if outside:
            raise ConfigError(f"bear_blog.{key} {outside} are not in envs {config['envs']}")
    if blog.get("figure1_envs") and config["datasets"]["source"] == "local":
        too_big = [n for n in blog["figure1_sizes"] if n > config["datasets"]["size"]]
        if too_big:
            raise ConfigError(
                f"bear_blog.figure1_sizes {too_big} exceed datasets.size ({config['datasets']['size']}), "
                "the expert dataset's transitions"
            )


def _check_q_diagnostic(config: dict[str, Any]) -> None:
    """The diagnostic's datasets on the config's envs, expert subsets no larger than the expert dataset."""
    datasets = config.get("q_diagnostic", {}).get("datasets", [])
    outside = [name for name in datasets if name.split("-", 1)[0] not in config["envs"]]
    if outside:
        raise ConfigError(f"q_diagnostic.datasets {outside} are not on envs {config['envs']}")
    if config["datasets"]["source"] == "local":
        sizes = {name: int(name.rsplit("first", 1)[1]) for name in datasets if "-expert-first" in name}
        too_big = [name for name, size in sizes.items() if size > config["datasets"]["size"]]
        if too_big:
            raise ConfigError(
                f"q_diagnostic.datasets {too_big} keep more transitions than "
                f"datasets.size ({config['datasets']['size']})"
            )


def _check_safer(safer: dict[str, Any] | None) -> None:
    """Evaluation tasks within the family's count, the table's bound among the computed ones, modes that sum to 1."""
    if not safer:
        return
    count = safer["tasks"]["eval"]
    if count > safer["tasks"]["data"]:
        raise ConfigError(
            f"safer.tasks.eval {count}: the evaluation tasks are data tasks, at most safer.tasks.data"
            f" {safer['tasks']['data']}"
        )
    downstream = safer["downstream"]
    for name, tasks in (
        ("tasks", downstream["tasks"]),
        ("ablation_tasks", downstream["ablation_tasks"]),
        ("figure5_task", [downstream["figure5_task"]]),
    ):
        outside = [task for task in tasks if task > count]
        if outside:
            raise ConfigError(
                f"safer.downstream.{name} {outside}: evaluation tasks are numbered 1..{count} (safer.tasks.eval)"
            )
    bounds = safer["bounds"]
    if bounds["table_target"] not in bounds["targets"]:
        raise ConfigError(
            f"safer.bounds.table_target {bounds['table_target']} "
            f"must be one of safer.bounds.targets {bounds['targets']}"
        )
    percents = [round(100 * target) for target in bounds["targets"]]
    if len(set(percents)) != len(percents):
        raise ConfigError(f"safer.bounds.targets {bounds['targets']}: two targets round to the same whole percent")
    modes = safer["data"]["modes"]
    if abs(sum(modes.values()) - 1) > 1e-9:
        raise ConfigError(f"safer.data.modes {modes}: the probabilities must sum to 1")
    from offrl.safer.priors.train import PRIOR_KINDS, PriorConfig, prior_config

    known = {f.name for f in fields(PriorConfig)} - {"kind", "steps", "batch_size", "seed"}
    unknown = sorted(set(safer["prior"]["options"]) - known)
    if unknown:
        raise ConfigError(f"safer.prior.options {unknown} unknown; allowed: {', '.join(sorted(known))}")
    for kind in PRIOR_KINDS:
        try:
            prior_config(kind, **safer["prior"]["options"])
        except (TypeError, ValueError) as err:
            raise ConfigError(f"safer.prior.options: {err}") from err


def _check_guided_study(guided: dict[str, Any], envs: list[str], seeds: list[int]) -> None:
    """The Guided TD3+BC study's envs among the run's, its extension apart from them, its seeds among the trained
    ones."""
    for key in ("envs", "extension_envs"):
        outside = [env for env in guided[key] if env not in envs]
        if outside:
            raise ConfigError(f"guided.{key} {outside} are not in envs {envs}")
    both = sorted(set(guided["envs"]) & set(guided["extension_envs"]))
    if both:
        raise ConfigError(
            f"guided.extension_envs {both} are also in guided.envs; an env is either the paper's or an extension"
        )
    untrained = [seed for seed in guided["seeds"] if seed not in seeds]
    if untrained:
        raise ConfigError(
            f"guided.seeds {untrained} are not in offline.seeds {seeds}; the study reads the offline runs' seeds"
        )


def _check_safety_experts(safety: dict[str, Any], envs: list[str], shipped_dir: str | Path) -> None:
    if safety["source"] == "shipped":
        available = shipped_envs(shipped_dir, "safety_expert")
        missing = [env for env in envs if env not in available]
        if missing:
            raise ConfigError(
                f"guided.safety_expert.source is 'shipped' but no shipped safety expert exists for {missing}; "
                f"shipped envs: {available}. Set guided.safety_expert.source: train, "
                "or drop guided_td3bc from offline.algorithms."
            )
    else:
        missing = [env for env in envs if env not in safety["ctrl_cost_weight"]]
        if missing:
            raise ConfigError(
                f"guided.safety_expert.ctrl_cost_weight has no weight for {missing}; "
                f"give one per env in {envs} (the paper: hopper 0.1, walker2d 0.01)"
            )


def seed_groups(seeds: list[int], per_job: int) -> list[str]:
    """Seeds split into jobs of ``per_job``, each named by its seeds: ``[0, 1, 2], 2 -> ["0-1", "2"]``."""
    return ["-".join(str(s) for s in seeds[i : i + per_job]) for i in range(0, len(seeds), per_job)]


def pack_runs(runs: list[tuple[str, str, str]], members: int, key: Callable[[str, str], Hashable]) -> list[list]:
    """Training runs ``(algo, dataset, seeds)`` grouped into packs of at most ``members`` members (seeds).

    Runs pack together when ``key(algo, dataset)`` agrees (one algorithm, env and budget; None: never packed);
    each group is filled in sorted order, a run at a time. ``members`` 0 (or a run larger than it): one run per
    pack. Only packs of two runs or more are returned: a run alone trains as it always has.
    """
    groups: dict[Hashable, list[tuple[str, str, str]]] = {}
    for run in sorted(set(runs)):
        group_key = key(run[0], run[1])
        if members and group_key is not None:
            groups.setdefault(group_key, []).append(run)
    packs = []
    for group in groups.values():
        pack: list[tuple[str, str, str]] = []
        for run in group:
            size = len(run[2].split("-"))
            if pack and sum(len(r[2].split("-")) for r in pack) + size > members:
                packs.append(pack)
                pack = []
            pack.append(run)
        packs.append(pack)
    return [pack for pack in packs if len(pack) > 1]

# offrl: safety-aware offline RL, from raw data to the papers' tables and figures.
# Rules only wire files together; every rule runs `python -m offrl <command>` (lib/offrl).
import copy
import json
import math
import os
import sys
from pathlib import Path

import yaml
from snakemake.utils import min_version, validate

from offrl.algos.presets import PRESETS
from offrl.config import (
    GUIDED_ALGORITHMS,
    ConfigError,
    all_variants,
    batch_size,
    check_config,
    pack_runs,
    preset_of,
    run_options,
    run_steps,
    seed_groups,
    study_datasets,
    taming_datasets,
    taming_sweeps,
    validate_config,
)
from offrl.plan import episode_steps, load_costs, projected_seconds

min_version("9.0")


# The configuration, layered by Snakemake: the default scale's file is the workflow profile's
# `configfile` (profiles/default), which a --configfile on the command line replaces (a scale's
# file is the whole config); the schema then fills in its defaults. Nothing changes it after.
SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
SHIPPED = Path(workflow.basedir) / "resources" / "shipped"
try:
    # One line per problem (names, types, ranges), on a copy: Snakemake's own check below fills the defaults.
    validate_config(copy.deepcopy(config), SCHEMA)
    validate(config, str(SCHEMA), set_default=True)
    check_config(config, shipped_dir=SHIPPED)  # the checks across fields
except ConfigError as error:
    sys.exit(f"config error (config/README.md lists every key):\n{error}")
# The values a config may name (the schema's enums): the wildcards' constraints (common.smk).
SCHEMA_ENUMS = yaml.safe_load(SCHEMA.read_text())["properties"]
ALL_ENVS = SCHEMA_ENUMS["envs"]["items"]["enum"]
ALL_KINDS = SCHEMA_ENUMS["datasets"]["properties"]["kinds"]["items"]["enum"]


report: "workflow/report/workflow.rst"


# The shared stages, then each study's own constants, input functions and artefacts.
include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/experts.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/guided.smk"
include: "workflow/rules/taming.smk"
include: "workflow/rules/bear_blog.smk"
include: "workflow/rules/safer.smk"
include: "workflow/rules/findings.smk"
include: "workflow/rules/gallery.smk"
# Last: packs the runs every rule above named.
include: "workflow/rules/train_packs.smk"


# What `all` builds beyond the datasets: the tables and figures `snakemake --report` gathers.
ARTEFACTS = [
    "results/tables/datasets.md",
    "results/tables/d4rl.md",
    "results/figures/d4rl_curves.png",
    "results/figures/simhash_conf.png",
    "results/figures/simhash_conf_hist.png",
    *guided_targets(),
    *contamination_targets(),
    *bear_blog_targets(),
    *q_diagnostic_targets(),
    *safer_targets(),
    "results/findings.md",
]
# The report's front page lists the artefacts not built yet (workflow/report/workflow.rst).
config["report_missing"] = [path for path in ARTEFACTS if not os.path.exists(path)]


rule all:
    default_target: True
    input:
        "results/config.yaml",
        dataset_summaries(),
        ARTEFACTS,

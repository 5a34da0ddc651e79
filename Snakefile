# offrl: safety-aware offline RL, from raw data to the papers' tables and figures.
# Rules only wire files together; every rule runs `python -m offrl <command>` (lib/offrl).
import copy
import json
import math
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

from offrl.algos.presets import PRESETS
from offrl.config import (
    GUIDED_ALGORITHMS,
    ConfigError,
    all_variants,
    batch_size,
    check_config,
    preset_of,
    run_steps,
    seed_groups,
    study_datasets,
    taming_datasets,
    taming_sweeps,
    validate_config,
)
from offrl.plan import EPISODE_STEPS, load_costs, projected_seconds

min_version("9.0")


# A scale's config file is the whole config (with the schema's defaults): the default scale's
# file is loaded only when no --configfile is given, as Snakemake would deep-merge the two.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


SHIPPED = Path(workflow.basedir) / "resources" / "shipped"
try:
    # The schema (names, types, ranges; fills in defaults), then the checks across fields: one line per problem.
    validate_config(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
    check_config(config, shipped_dir=SHIPPED)
except ConfigError as error:
    sys.exit(f"config error (config/README.md lists every key):\n{error}")


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


# The project's one software environment (`--sdm conda`), set here once for every rule that
# runs a command; Snakemake's top-level `conda:` would instead inject it into Snakemake's own
# process. A `run:` rule (resolved_config) runs inside Snakemake, where no environment applies.
for workflow_rule in workflow.rules:
    if not (workflow_rule.norun or workflow_rule.is_run):
        workflow_rule.conda_env = str(Path(workflow.basedir) / "envs" / "offrl.yaml")

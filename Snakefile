# offrl: safety-aware offline RL, from raw data to the papers' tables and figures.
# Rules only wire files together; every rule runs `python -m offrl <command>` (lib/offrl).
import json
from pathlib import Path

from snakemake.utils import min_version, validate

from offrl.algos.presets import PRESETS
from offrl.config import GUIDED_ALGORITHMS, all_variants, check_config, preset_of, seed_groups, taming_sweeps

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
SHIPPED = Path(workflow.basedir) / "resources" / "shipped"
check_config(config, shipped_dir=SHIPPED)


include: "workflow/rules/common.smk"
include: "workflow/rules/experts.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/safer.smk"


rule all:
    input:
        dataset_summaries(),
        "results/tables/datasets.md",
        "results/tables/d4rl.md",
        "results/figures/d4rl_curves.png",
        "results/figures/simhash_conf.png",
        "results/figures/simhash_conf_hist.png",
        guided_targets(),
        contamination_targets(),
        bear_blog_targets(),
        q_diagnostic_targets(),
        safer_targets(),
    default_target: True

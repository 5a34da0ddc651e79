"""The command line: every command's help, the global options, names checked before any work, errors that name the fix."""

import argparse
import json

import pytest

from offrl import cli
from offrl.algos.presets import PRESETS
from offrl.commands import offline
from tests.conftest import REPO, commands


def test_relaxation_weights_help_spells_the_default_bins():
    # The help spells the bins out so that the CLI's start-up does not import torch; this keeps them equal.
    from offrl.report.relaxation import DEFAULT_BINS

    help_text = " ".join(commands(cli.build_parser())["relaxation-weights"].format_help().split())
    assert f"(default: {' '.join(map(str, DEFAULT_BINS))})" in help_text


def test_every_command_renders_its_help_with_defaults():
    parser = cli.build_parser()
    assert "contamination-figure" in parser.format_help() and "option_strings" not in parser.format_help()
    for name, command in commands(parser).items():
        text = command.format_help()
        assert "option_strings" not in text and "--threads N" in text and "--quiet" in text, name
        for action in command._actions:
            shown = (
                action.default not in (None, False, argparse.SUPPRESS) and not action.required and action.option_strings
            )
            if shown:
                # Whitespace aside: the help wraps long defaults, at spaces and hyphens.
                assert "".join(f"(default: {action.default})".split()) in "".join(text.split()), (name, action.dest)
    train = " ".join(commands(parser)["train"].format_help().split())
    assert "--steps STEPS gradient steps (the papers: 1M) (default: 1000000)" in train
    assert f"(default: {cli.DEFAULT_THREADS}, i.e. min(2, this machine's cores)" in train


@pytest.mark.parametrize("before", [True, False])
def test_global_options_go_before_or_after_the_command(before):
    options = ["--threads", "3", "--device", "cpu", "--quiet"]
    command = ["train", "--algo", "td3bc", "--dataset", "hopper-medium", "--out", "/tmp/x"]
    args = cli.build_parser().parse_args(options + command if before else command + options)
    assert (args.threads, args.device, args.quiet) == (3, "cpu", True)


def test_global_options_default_to_a_few_threads_and_auto_device():
    args = cli.build_parser().parse_args(
        ["evaluate", "--snapshots", "s.pt", "--algo", "td3bc", "--dataset", "hopper-medium", "--out", "e.csv"]
    )
    assert 1 <= args.threads == cli.DEFAULT_THREADS <= 2 and args.device == "auto" and args.quiet is False


def run(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code not in (0, None)
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["safer-prior", "--kind", "parot", "--dataset-dir", "d", "--out", "o"],
            "argument --kind: invalid choice: 'parot'",
        ),
        (
            ["downstream", "--method", "safe", "--task", "1", "--data-summary", "s", "--out", "o"],
            "argument --method: invalid choice: 'safe'",
        ),
        (
            ["collect", "--env", "ant", "--kind", "expert", "--size", "10", "--root", "r", "--summary", "s"],
            "argument --env: invalid choice: 'ant'",
        ),
        (
            ["bench", "td3bx", "--configfile", str(REPO / ".test/config/config.yaml")],
            "--algo td3bx: unknown; allowed: presets bc, ",
        ),
        (
            ["evaluate", "--snapshots", "s.pt", "--algo", "td3bx", "--dataset", "hopper-medium", "--out", "e.csv"],
            "--algo td3bx: unknown",
        ),
        (
            ["evaluate", "--snapshots", "s.pt", "--algo", "td3bc", "--dataset", "ant-medium", "--out", "e.csv"],
            "dataset 'ant-medium' is not <env>-<kind>",
        ),
        (["train", "--algo", "td3bc", "--dataset", "hopper-mine", "--out", "o"], "(any label with --dataset-dir)"),
    ],
)
def test_names_are_checked_against_their_real_choices(argv, expected, capsys):
    assert expected in run(argv, capsys)


def test_algo_accepts_the_variants_of_a_config_and_of_json(tmp_path):
    args = argparse.Namespace(configfile=[str(REPO / ".test" / "config" / "config.yaml")], variants="{}")
    assert offline.resolve_algorithm("bear_small", args) == ("bear", {"hidden": [32, 32], "vae_hidden": [32, 32]})
    assert offline.resolve_algorithm("td3bc_gp_policy_actions", args) == (
        "td3bc_gp",
        {"gp_actions": "policy"},
    )  # a TD3BC++ sweep
    args = argparse.Namespace(
        configfile=[], variants=json.dumps({"mine": {"preset": "td3bc", "options": {"alpha": 1.0}}})
    )
    assert offline.resolve_algorithm("mine", args) == ("td3bc", {"alpha": 1.0})
    assert offline.resolve_algorithm("td3bc", args) == ("td3bc", {})


def test_algo_on_an_env_takes_the_configs_env_options():
    args = argparse.Namespace(configfile=[str(REPO / "config" / "paper.yaml")], variants="{}")
    assert offline.resolve_algorithm("cql", args, "hopper") == ("cql", {"min_q_weight": 20})  # Table 5
    assert offline.resolve_algorithm("td3bc_pp", args, "relocate") == (
        "td3bc_pp",
        {"alpha": 0.02, "gradient_penalty": 0.1},  # Table 7
    )
    assert offline.resolve_algorithm("cql", args) == ("cql", {})  # no env: the preset's own options
    assert all(name in commands(cli.build_parser())["train"].format_help() for name in PRESETS)


def test_interval_errors_name_the_flags_the_user_set(capsys):
    base = ["train", "--algo", "td3bc", "--dataset", "hopper-medium", "--out", "/tmp/never"]
    assert "--log-every 1000 (default) must divide --eval-every 100: give --log-every a divisor of 100" in run(
        [*base, "--eval-every", "100"], capsys
    )
    assert "--steps 1000 must be a multiple of --eval-every 300" in run(
        [*base, "--steps", "1000", "--eval-every", "300"], capsys
    )


def test_missing_dataset_names_the_snakemake_target(tmp_path, capsys):
    argv = [
        "train",
        "--algo",
        "td3bc",
        "--dataset",
        "hopper-expert-random-30",
        "--root",
        str(tmp_path),
        "--out",
        str(tmp_path / "run"),
    ]
    err = run(argv, capsys)
    assert (
        "build it with `snakemake resources/datasets/hopper-expert-random-30.json --cores 2` in the repository root"
        in err
    )
    assert not (tmp_path / "run").exists()

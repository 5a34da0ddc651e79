"""The command line: every command's help, the global options, names checked before any work, errors that name
the fix."""

import argparse
import json

import pytest

from offrl import cli
from offrl.algos.presets import PRESETS
from offrl.commands import offline
from tests.conftest import REPO, commands, hopper_random_minari


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


# Bad arguments refused before work (issue 34): each in one line, naming the flag and both values.


def test_train_refuses_an_output_it_cannot_write_before_loading_data(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    argv = ["train", "--algo", "td3bc", "--dataset", "hopper-medium", "--root", str(tmp_path / "none")]
    err = run([*argv, "--out", str(tmp_path / "file" / "run")], capsys)
    assert (
        f"--out {tmp_path / 'file' / 'run'}: cannot write there ({tmp_path / 'file'} is not a writable directory)"
        in err
    )
    assert "no Minari dataset" not in err  # refused before the dataset is even looked for
    err = run([*argv, "--out", str(tmp_path / "run"), "--checkpoint", str(tmp_path / "file" / "c.pt")], capsys)
    assert "--checkpoint" in err and "cannot write there" in err


def test_train_refuses_repeated_seeds(tmp_path, capsys):
    argv = ["train", "--algo", "td3bc", "--dataset", "hopper-medium", "--seeds", "0", "1", "0"]
    assert "--seeds 0 1 0: repeated [0]; give each once" in run([*argv, "--out", str(tmp_path / "run")], capsys)


def test_train_refuses_a_dataset_whose_record_names_another_env(tmp_path, capsys):
    path = hopper_random_minari(tmp_path, 300)
    argv = ["train", "--algo", "bc", "--dataset", "walker2d-mine", "--dataset-dir", str(path), "--steps", "10"]
    err = run([*argv, "--eval-every", "10", "--log-every", "10", "--out", str(tmp_path / "run")], capsys)
    assert (
        f"--dataset walker2d-mine: the dataset at {path} records env Hopper-v5 with observations of 11 and actions of"
        " 3, not walker2d's Walker2d-v5 (17, 6)" in err
    )
    assert not (tmp_path / "run").exists()


def _fake_run(tmp_path, config_json=True):
    """A run's snapshots.pt (what evaluate checks: preset and env) and, optionally, its config.json."""
    import torch

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"algorithm": "td3bc", "env": "hopper", "actors": {}}, run_dir / "snapshots.pt")
    if config_json:
        (run_dir / "config.json").write_text(json.dumps({"config": {"dataset": "hopper-medium"}}))
    return run_dir / "snapshots.pt"


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--algo", "bc"], "--algo names preset bc, but the run {s} trained td3bc"),
        (["--algo", "bear_small", "--configfile", str(REPO / ".test/config/config.yaml")], "preset bear, but"),
        (["--dataset", "walker2d-expert"], "--dataset walker2d-expert, but the run {s} trained on hopper-medium"),
    ],
)
def test_evaluate_refuses_flags_that_contradict_the_run(tmp_path, capsys, flags, expected):
    snapshots = _fake_run(tmp_path)
    err = run(["evaluate", "--snapshots", str(snapshots), *flags, "--out", str(tmp_path / "e.csv")], capsys)
    assert expected.format(s=snapshots) in err and len(err.strip().splitlines()) == 1


def test_evaluate_without_config_json_checks_the_env(tmp_path, capsys):
    snapshots = _fake_run(tmp_path, config_json=False)
    argv = ["evaluate", "--snapshots", str(snapshots), "--out", str(tmp_path / "e.csv")]
    assert f"--dataset walker2d-x is a walker2d dataset, but the run {snapshots} trained on hopper" in run(
        [*argv, "--dataset", "walker2d-x"], capsys
    )
    assert "has no config.json saying its dataset; give it" in run(argv, capsys)


def test_evaluate_takes_algorithm_and_dataset_from_the_run(tmp_path, monkeypatch):
    import pandas as pd

    import offrl.evaluate

    snapshots = _fake_run(tmp_path)
    episodes = pd.DataFrame({"episode": [0], "return": [1.0]})
    monkeypatch.setattr(offrl.evaluate, "evaluate_snapshots", lambda *a, **k: (episodes.copy(), episodes.copy()))
    cli.main(["evaluate", "--snapshots", str(snapshots), "--out", str(tmp_path / "e.csv")])
    scores = pd.read_csv(tmp_path / "e.csv")
    assert (scores["algorithm"].tolist(), scores["dataset"].tolist()) == (["td3bc"], ["hopper-medium"])
    # A variant's name labels the rows, as the workflow passes it.
    cli.main(["evaluate", "--snapshots", str(snapshots), "--algo", "td3bc", "--out", str(tmp_path / "f.csv")])
    assert pd.read_csv(tmp_path / "f.csv")["algorithm"].tolist() == ["td3bc"]


def test_evaluate_refuses_no_episodes(tmp_path, capsys):
    argv = ["evaluate", "--snapshots", str(_fake_run(tmp_path)), "--episodes", "0", "--out", str(tmp_path / "e.csv")]
    assert "--episodes must be at least 1, got 0" in run(argv, capsys)


def test_evaluate_refuses_an_output_it_cannot_write(tmp_path, capsys):
    snapshots = _fake_run(tmp_path)
    (tmp_path / "file").write_text("")
    argv = ["evaluate", "--snapshots", str(snapshots), "--out", str(tmp_path / "file" / "e.csv")]
    assert f"--out {tmp_path / 'file' / 'e.csv'}: cannot write there" in run(argv, capsys)


def test_plan_names_a_missing_config_file_in_one_line(tmp_path, capsys):
    err = run(["plan", "--configfile", str(tmp_path / "nope.yaml")], capsys)
    assert err.strip() == f"offrl plan: error: --configfile: no such file {tmp_path / 'nope.yaml'}"


def test_relaxation_weights_refuses_a_dataset_of_another_env_than_the_run(tmp_path, capsys):
    import torch

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"algorithm": "td3bc_pp", "env": "walker2d", "actors": {}}, run_dir / "snapshots.pt")
    path = hopper_random_minari(tmp_path, 300)
    err = run(["relaxation-weights", "--run", str(run_dir), "--dataset-dir", str(path)], capsys)
    assert (
        f"--dataset-dir (the run {run_dir} trained on walker2d): the dataset at {path} records env Hopper-v5 with"
        " observations of 11 and actions of 3, not walker2d's Walker2d-v5 (17, 6)" in err
    )


def test_data_commands_refuse_a_dataset_recorded_for_another_env(tmp_path, capsys):
    """A Hopper dataset where Walker2d's expert data should be: subset and contaminate name both envs, write nothing."""
    import shutil

    hopper = hopper_random_minari(tmp_path / "made", 300)
    root = tmp_path / "root"
    for kind in ("expert", "random"):
        shutil.copytree(hopper, root / "offrl" / "walker2d" / f"{kind}-v0")
    expected = "--env walker2d: the dataset at {root}/offrl/walker2d/expert-v0 records env Hopper-v5"
    for argv in (
        ["subset", "--env", "walker2d", "--size", "10", "--root", str(root), "--summary", str(tmp_path / "s.json")],
        ["contaminate", "--env", "walker2d", "--percent", "30", "--root", str(root), "--summary", str(tmp_path / "s")],
    ):
        assert expected.format(root=root) in run(argv, capsys)
    assert sorted(p.name for p in (root / "offrl" / "walker2d").iterdir()) == ["expert-v0", "random-v0"]

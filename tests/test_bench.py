import pytest

from offrl.bench import bench


@pytest.mark.parametrize("algorithm", ["td3bc", "guided_td3bc", "td3bc_pp", "bear"])
def test_bench_runs_every_kind_of_preset(algorithm):
    # Not a timing test: the command must build the preset (with made-up run files where it needs them) and step it.
    result = bench(algorithm, steps=6, members=2, device="cpu", reference=algorithm == "td3bc")
    assert result["algorithm"] == algorithm and result["members"] == 2 and result["steps_per_s_total"] > 0
    assert ("reference_steps_per_s" in result) == (algorithm == "td3bc")

import numpy as np
import pytest

from offrl.files import write_atomically


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_atomically(tmp_path / "out" / "log.csv", crash)
    assert list((tmp_path / "out").iterdir()) == []


def test_the_temporary_keeps_the_suffix_so_savez_writes_where_it_is_told(tmp_path):
    path = write_atomically(tmp_path / "index.npz", lambda tmp: np.savez(tmp, codes=np.arange(3)))
    assert [p.name for p in tmp_path.iterdir()] == ["index.npz"]
    np.testing.assert_array_equal(np.load(path)["codes"], np.arange(3))


def test_write_csv_and_write_text_leave_only_their_file(tmp_path):
    import pandas as pd

    from offrl.files import write_csv, write_text

    write_csv(pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.25]}), tmp_path / "log.csv", index=False)
    write_text(tmp_path / "config.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "log.csv"]
    assert (tmp_path / "log.csv").read_text() == "step,loss\n1,0.5\n2,0.25\n"
    assert (tmp_path / "config.json").read_text() == "{}\n"


def test_a_figure_is_saved_whole_or_not_at_all(tmp_path, monkeypatch):
    """save_figure writes through write_atomically: a crash while drawing the PDF leaves the PNG and no half PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from offrl.report.figures import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    original = fig.savefig

    def crash_on_pdf(path, **kwargs):
        original(path, **kwargs)
        if str(path).endswith(".pdf"):
            raise RuntimeError("killed")

    monkeypatch.setattr(fig, "savefig", crash_on_pdf)
    with pytest.raises(RuntimeError, match="killed"):
        save_figure(fig, tmp_path / "curve")
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]

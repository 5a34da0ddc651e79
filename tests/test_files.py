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

"""The MovieLens loader: offline cache fill from the RecBole wheel, checksums."""
import hashlib
import io
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

from sparsecore import datasets
from sparsecore.datasets import _movielens


def test_fetch_from_cache_filled_offline(movielens_home):
    ml = datasets.fetch_movielens("100k", data_home=movielens_home, download_if_missing=False)
    assert len(ml) == 100_000
    assert (ml.n_users, ml.n_items) == (943, 1682)
    assert ml.users.min() == 0 and ml.users.max() == 942
    assert ml.items.min() == 0 and ml.items.max() == 1681
    counts = dict(zip(*np.unique(ml.ratings, return_counts=True)))
    # the published rating histogram of ML-100K
    assert counts == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    # first line of u.data: 196 242 3 881250949
    assert (ml.users[0], ml.items[0], ml.ratings[0], ml.timestamps[0]) == (195, 241, 3.0, 881250949)
    R = ml.to_csr()
    assert isinstance(R, sp.csr_array) and R.has_canonical_format
    assert R.shape == (943, 1682) and R.nnz == 100_000  # no duplicate (user, item)
    assert np.bincount(ml.users).min() >= 20  # every ML-100K user rated >= 20 movies


def test_cached_file_is_byte_identical_to_u_data(movielens_home):
    path = movielens_home / "movielens" / "ml-100k" / "ratings.tsv"
    content = path.read_bytes()
    assert len(content) == 1_979_173
    assert hashlib.md5(content).hexdigest() == "6e47046882bad158b0efbb84cd5cb987"


def test_corrupt_cache_is_refused(movielens_home, tmp_path):
    home = tmp_path / "home"
    target = home / "movielens" / "ml-100k" / "ratings.tsv"
    target.parent.mkdir(parents=True)
    content = (movielens_home / "movielens" / "ml-100k" / "ratings.tsv").read_bytes()
    target.write_bytes(content.replace(b"\t5\t", b"\t4\t", 1))
    with pytest.raises(OSError, match="corrupt or edited"):
        datasets.fetch_movielens(data_home=home, download_if_missing=False)


def test_missing_cache_without_download(tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False"):
        datasets.fetch_movielens("100k", data_home=tmp_path, download_if_missing=False)


def test_unknown_variant(tmp_path):
    with pytest.raises(ValueError, match="available: 100k"):
        datasets.fetch_movielens("25m", data_home=tmp_path)


def test_download_checks_the_archive_checksum(tmp_path, monkeypatch):
    """A download whose archive MD5 differs from GroupLens' is refused and
    nothing is cached (no network: urlopen is replaced)."""
    import urllib.request

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t874965758\n")

    class FakeResponse(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        return FakeResponse(buf.getvalue())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(OSError, match="MD5"):
        datasets.fetch_movielens("100k", data_home=tmp_path)
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert not (tmp_path / "movielens" / "ml-100k" / "ratings.tsv").exists()


def test_wheel_without_movielens_is_refused(tmp_path):
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fake/__init__.py", "")
    with pytest.raises(ValueError, match="has no recbole/dataset_example"):
        datasets.cache_movielens_from_recbole(wheel, data_home=tmp_path)


def test_edited_wheel_copy_is_refused(tmp_path):
    wheel = tmp_path / "recbole-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(_movielens._VARIANTS["100k"]["recbole_member"],
                    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t5\t1\n")
    with pytest.raises(OSError, match="corrupt or edited"):
        datasets.cache_movielens_from_recbole(wheel, data_home=tmp_path)


def test_data_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSECORE_DATA", str(tmp_path / "d"))
    assert datasets.get_data_home() == tmp_path / "d"
    assert (tmp_path / "d").is_dir()

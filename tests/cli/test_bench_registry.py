"""The benchmark registry: one vocabulary of peers, and the asv suite's
classes naming only registered families, cases and peers."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsecore._bench import _registry

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_every_family_names_its_peers_from_the_vocabulary():
    fams = _registry.families()
    assert {"spgemm", "spmm", "monarch", "sbl", "torch", "semiring.masked"} <= set(fams)
    for name, fam in fams.items():
        assert fam.name == name
        assert len(set(fam.peer_names)) == len(fam.peer_names), name
        if fam.kind == "peers":
            assert set(fam.peer_names) <= set(_registry.PEERS), name
    assert set(_registry.RENAMED.values()) <= set(_registry.PEERS)


def test_unknown_peer_name_is_refused():
    fam = _registry.Family("nope", ["a"], lambda n: None, lambda c, t: [], ["np_dense"])
    with pytest.raises(ValueError, match="np_dense"):
        _registry.register(fam)


def test_prepared_peers_agree_with_scipy():
    ours = _registry.prepare("spgemm", "olm1000", "sparsecore", 1)
    ref = _registry.prepare("spgemm", "olm1000", "scipy", 1)
    try:
        C, R = ours.run(), ref.run()
        np.testing.assert_allclose(C.toarray(), R.toarray(), rtol=1e-12, atol=1e-12)
    finally:
        ours.close()
        ref.close()
    with pytest.raises(_registry.Unavailable):
        _registry.prepare("spgemm", "olm1000", "scipy", 2)  # scipy is single-threaded


@pytest.mark.skipif(not (BENCHMARKS / "benchmarks" / "common.py").is_file(),
                    reason="no benchmarks/ folder")
def test_asv_classes_are_views_of_registered_families():
    pytest.importorskip("threadpoolctl")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        common = importlib.import_module("benchmarks.common")
        seen = 0
        for path in sorted((BENCHMARKS / "benchmarks").glob("bench_*.py")):
            module = importlib.import_module(f"benchmarks.{path.stem}")
            for obj in vars(module).values():
                if not (isinstance(obj, type) and getattr(obj, "family", None)):
                    continue
                if obj in (common.PeerBenchmark, common.SpeedupBenchmark):
                    continue
                fam = _registry.family(obj.family)
                if issubclass(obj, common.PeerBenchmark):
                    assert set(obj.params[1]) <= set(fam.peer_names), obj.__name__
                elif obj.base is not None:  # None: the class names its own pairs
                    assert {obj.base, obj.ours} <= set(fam.peer_names), obj.__name__
                seen += 1
        assert seen >= 20
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
            del sys.modules[name]


@pytest.mark.parametrize("name", ["young1c", "bcsstk13"])
def test_real_matrix_loads_complex_and_real_files_as_float64(name):
    from helpers import SHARED

    if SHARED is None or not (SHARED / f"{name}.mtx").exists():
        pytest.skip(f"{name}.mtx is not in ../shared/data/matrices on this machine")
    A = _registry.real_matrix(name, SHARED)
    assert A.dtype == np.float64 and A.format == "csr"
    assert A.nnz > 0 and np.all(A.data != 0)

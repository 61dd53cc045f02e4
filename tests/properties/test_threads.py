import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from sparsecore import spgemm
from sparsecore._threads import effective_n_threads, openmp_enabled
from sparsecore._ext import _openmp_helpers


def test_n_threads_rules():
    all_threads = effective_n_threads(None)
    assert all_threads >= 1
    assert effective_n_threads(-1) == all_threads
    assert effective_n_threads(3) == (3 if openmp_enabled() else 1)
    assert effective_n_threads(-all_threads - 5) == 1
    with pytest.raises(ValueError, match="n_threads=0"):
        effective_n_threads(0)
    with pytest.raises(TypeError):
        effective_n_threads(2.0)


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
def test_threadpoolctl_limits_are_honoured():
    # our kernels see threadpoolctl's limit on the OpenMP runtime they link
    assert any(info["user_api"] == "openmp" for info in threadpool_info())
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _openmp_helpers.max_threads() == 1
        assert effective_n_threads(None) == 1
    assert effective_n_threads(None) == _openmp_helpers.max_threads()


def test_result_does_not_depend_on_threadpool_limits():
    A = sp.random_array((300, 300), density=0.05, rng=np.random.default_rng(0), format="csr")
    with threadpool_limits(limits=1):
        C1 = spgemm(A, A)
    C = spgemm(A, A, n_threads=2)
    np.testing.assert_array_equal(C.data, C1.data)


def test_openmp_is_built_where_ci_expects_it():
    import os

    if os.environ.get("SPARSECORE_EXPECT_OPENMP") != "1":
        pytest.skip("SPARSECORE_EXPECT_OPENMP is not set (CI sets it)")
    assert openmp_enabled()

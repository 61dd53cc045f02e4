"""The AVX-512 and AVX2 instances of the SpMM products: both levels give the
same products (bit for bit: every output entry sums its terms in the same
order with fused multiply-adds), for every format, dtype, batch width and
layout, at any thread count; and the level switch checks its argument."""
import numpy as np
import pytest
import scipy.sparse as sp

import sparsecore
from sparsecore.ops import block_prune, nm_prune, spmm
from sparsecore._ext import _spmm

HAVE_AVX512 = _spmm.build_has_avx512() and _spmm.cpu_has_avx512()
needs_avx512 = pytest.mark.skipif(
    not HAVE_AVX512, reason="this CPU or build has no AVX-512: only the AVX2 path can run")


@pytest.fixture
def restore_simd():
    yield
    sparsecore.set_simd("auto")


def products(S, X, threads):
    out = {}
    for level in ("avx2", "avx512"):
        sparsecore.set_simd(level)
        assert sparsecore.get_simd() == level
        out[level] = [spmm(S, X, n_threads=t) for t in threads]
    return out


def matrices(rng, m, n, dtype):
    W = rng.standard_normal((m, n)).astype(dtype)
    yield "nm-2:4", nm_prune(W, 2, 4)
    yield "nm-1:4", nm_prune(W, 1, 4)
    yield "nm-4:8", nm_prune(W, 4, 8)
    yield "nm-3:7", nm_prune(W, 3, 7)
    yield "block-16x16", block_prune(W, (16, 16), 0.4)
    yield "block-8x4", block_prune(W, (8, 4), 0.4)     # tiles of 8 rows only
    yield "block-32x2", block_prune(W, (32, 2), 0.4)   # 4 x 8 rows; 150 = 4 x 32 + 16 + 4 + 2
    yield "block-4x1", block_prune(W, (4, 1), 0.4)
    yield "block-1x1", block_prune(W, (1, 1), 0.3)
    yield "csr", sp.random_array((m, n), density=0.1, format="csr", dtype=dtype, rng=rng)


#: float32 N:M patterns that the lane-permute vector kernels take at up to 8
#: columns (16 kept values a multiply-add with AVX-512, 8 with AVX2)
VECTOR_NM = ("nm-2:4", "nm-1:4", "nm-4:8")


@needs_avx512
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [5, 9, 16, 17, 48, 100, 333])
def test_avx512_equals_avx2_bit_for_bit(dtype, B, restore_simd):
    rng = np.random.default_rng(B)
    m, n = 150, 203  # n is no multiple of M or of a block
    X = rng.standard_normal((n, B)).astype(dtype)
    for name, S in matrices(rng, m, n, dtype):
        if B <= 8 and dtype == np.float32 and name in VECTOR_NM:
            continue  # the vector kernels' case: equal to rounding (below)
        ref = S.toarray().astype(np.float64) @ X.astype(np.float64)
        strided = np.zeros((n, 2 * B), dtype)[:, ::2]
        strided[...] = X
        for layout in (X, np.asfortranarray(X), strided):
            got = products(S, layout, threads=(1, 2))
            np.testing.assert_array_equal(got["avx512"][0], got["avx2"][0], err_msg=name)
            np.testing.assert_array_equal(got["avx512"][1], got["avx512"][0], err_msg=name)
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got["avx512"][0], ref, rtol=tol, atol=tol, err_msg=name)
        # batch-major Y (the layer orientation): staged, flushed by columns
        for level in ("avx2", "avx512"):
            sparsecore.set_simd(level)
            for t in (1, 2):
                out = np.full((B, m), np.nan, dtype)
                spmm(S, np.asfortranarray(X), out=out.T, n_threads=t)
                np.testing.assert_array_equal(out.T, got["avx512"][0], err_msg=name)


@needs_avx512
@pytest.mark.parametrize("nm", [(2, 4), (1, 4), (4, 8), (1, 2), (8, 16), (3, 7)])
@pytest.mark.parametrize("B", [None, 1, 3, 6, 8])
def test_nm_vector_products_agree_to_rounding(nm, B, restore_simd):
    # one vector (None: 1-D) or a few: AVX-512 sums 16 lanes at a time, AVX2
    # 8, so only rounding may differ; each level is the same for any thread
    # count, and up to 6 columns (the AVX2 kernel's widest batch; AVX-512's
    # is 8) a column's result does not depend on the other columns
    rng = np.random.default_rng(7)
    n, m = nm
    # (24, 4200): rows whose x outgrows half of L1 (the AVX-512 kernel even
    # where 512-bit operations are split in halves)
    for shape in ((300, 1000), (64, 4096), (24, 4200), (5, 37)):
        S = nm_prune(rng.standard_normal(shape).astype(np.float32), n, m)
        x = rng.standard_normal(shape[1] if B is None else (shape[1], B)).astype(np.float32)
        ref = S.toarray().astype(np.float64) @ x.astype(np.float64)
        scale = np.abs(S.toarray()).astype(np.float64) @ np.abs(x).astype(np.float64)
        got = {}
        for level in ("avx2", "avx512"):
            sparsecore.set_simd(level)
            got[level] = spmm(S, x, n_threads=1)
            np.testing.assert_array_equal(spmm(S, x, n_threads=2), got[level])
            assert np.all(np.abs(got[level] - ref) <= 4e-6 * np.sqrt(shape[1]) * scale + 1e-30)
            if B is not None and B <= 6:
                alone = spmm(S, np.ascontiguousarray(x[:, -1]), n_threads=1)
                np.testing.assert_array_equal(got[level][:, -1], alone)


@needs_avx512
def test_wide_batches_split_by_panels_and_by_rows_agree(restore_simd):
    # wide enough that each thread packs panels of its own (by panels) and
    # narrow enough that threads share one packing (by rows)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((300, 512)).astype(np.float32)
    S = nm_prune(W, 2, 4)
    for B in (64, 200, 1000):
        Xb = rng.standard_normal((B, 512)).astype(np.float32)
        for level in ("avx2", "avx512"):
            sparsecore.set_simd(level)
            one = Xb @ S.T
            for t in (2, 3):
                np.testing.assert_array_equal(spmm(S, Xb.T, n_threads=t).T, one)
        np.testing.assert_allclose(one, Xb @ S.toarray().T, rtol=1e-4, atol=1e-4)


def test_avx2_level_always_available(restore_simd):
    before = sparsecore.set_simd("avx2")
    assert before in ("avx512", "avx2", "baseline")
    assert sparsecore.get_simd() in ("avx2", "baseline")
    sparsecore.set_simd("auto")
    expected = "avx512" if HAVE_AVX512 else sparsecore.get_simd()
    assert sparsecore.get_simd() == expected
    assert sparsecore.set_simd(before) == expected
    assert sparsecore.get_simd() == before


@pytest.mark.parametrize("bad", ["AVX512", "sse", "", None, 2])
def test_set_simd_rejects_unknown_levels(bad, restore_simd):
    before = sparsecore.get_simd()
    with pytest.raises(ValueError, match="level must be one of"):
        sparsecore.set_simd(bad)
    assert sparsecore.get_simd() == before


def test_set_simd_avx512_without_it_says_why(restore_simd, monkeypatch):
    # a CPU without AVX-512, as the level switch sees it
    monkeypatch.setattr(_spmm, "cpu_has_avx512", lambda: False)
    before = sparsecore.get_simd()
    with pytest.raises(ValueError, match="not available: this CPU lacks AVX-512"):
        sparsecore.set_simd("avx512")
    assert sparsecore.get_simd() == before


def test_show_config_names_the_level(capsys):
    sparsecore.show_config()
    out = capsys.readouterr().out
    assert ("AVX-512" in out) == (sparsecore.get_simd() == "avx512")

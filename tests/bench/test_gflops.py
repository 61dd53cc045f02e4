"""``sparsecore bench gflops``: useful flop counts against direct counts, the
machine facts of the header, the JSON record, and ``--simd`` errors. Nothing
here asserts a time or a rate."""
import argparse
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import sparsecore
from sparsecore._bench import gflops
from sparsecore.formats import MonarchMatrix


def _random_csr(rng, shape, density):
    """Random pattern with values in [1, 2): no explicit zeros, so the
    stored entries are the nonzeros of the dense copy."""
    A = sp.random(*shape, density=density, format="csr", random_state=rng,
                  data_rvs=lambda k: 1 + rng.random(k))
    return sp.csr_array(A)


@pytest.mark.parametrize("shapes", [((12, 9), (9, 7)), ((10, 10), (10, 10)), ((1, 5), (5, 1))])
def test_spgemm_flops_counts_every_scalar_product(rng, shapes):
    A = _random_csr(rng, shapes[0], 0.3)
    B = _random_csr(rng, shapes[1], 0.3)
    Ad, Bd = A.toarray() != 0, B.toarray() != 0
    brute = 0
    for i, k, j in itertools.product(range(Ad.shape[0]), range(Ad.shape[1]), range(Bd.shape[1])):
        brute += bool(Ad[i, k] and Bd[k, j])
    assert gflops.spgemm_flops(A, B) == 2 * brute
    # the same count through the rows of A (what scipy's SpGEMM visits)
    assert gflops.spgemm_flops(A, B) == 2 * int(np.diff(B.indptr)[A.indices].sum())


def test_spgemm_flops_of_empty_and_mismatched_operands():
    Z = sp.csr_array((4, 3))
    assert gflops.spgemm_flops(Z, sp.csr_array(np.ones((3, 2)))) == 0
    with pytest.raises(ValueError, match="columns"):
        gflops.spgemm_flops(Z, sp.csr_array((4, 2)))


@pytest.mark.parametrize("batch", [1, 8, 128])
def test_spmm_flops_are_twice_the_stored_values_times_the_batch(batch):
    k = gflops._nm_kernel(2, 4, batch, shape=(64, 32))
    assert k.flops == 2 * (64 * 32 // 2) * batch
    k = gflops._nm_kernel(1, 4, batch, shape=(64, 32))
    assert k.flops == 2 * (64 * 32 // 4) * batch
    k = gflops._block_kernel(0.25, batch, shape=(64, 32), bs=(16, 16))
    S = k.inputs["S"]
    assert S.nnzb == 2 and k.flops == 2 * S.nnzb * 16 * 16 * batch
    k = gflops._csr_kernel(np.float32, n=200, density=0.05, batch=batch)
    assert k.flops == 2 * k.inputs["A"].nnz * batch
    k = gflops._sddmm_kernel("2:4", batch, shape=(64, 32))
    assert k.flops == 2 * (64 * 32 // 2) * batch


def test_monarch_flops_count_the_stored_block_entries():
    M = MonarchMatrix.random((256, 256), dtype=np.float32, random_state=0)
    assert M.n_params == 2 * 256 * 16  # sqrt(n) blocks of sqrt(n) x sqrt(n), twice
    assert gflops.monarch_flops(M, 32) == 2 * M.n_params * 32


def test_every_kernel_runs_and_its_peer_agrees():
    """Small versions of each kernel kind: sparsecore and the peer compute
    the same product (float32 tolerance)."""
    ks = [gflops._nm_kernel(2, 4, 8, shape=(64, 32)),
          gflops._block_kernel(0.5, 8, shape=(64, 32)),
          gflops._csr_kernel(np.float64, n=100, density=0.05, batch=4),
          gflops._spgemm_kernel("er", gflops.generated_matrix("er1k_3"), "generated"),
          gflops._monarch_kernel(n=256, batch=8),
          gflops._sddmm_kernel("block", 8, shape=(64, 32))]
    for k in ks:
        ours, ref = k.ours(k.inputs, 1), k.peer(k.inputs)
        ours = ours.toarray() if hasattr(ours, "toarray") else ours
        ref = ref.toarray() if hasattr(ref, "toarray") else ref
        if k.group == "sddmm":  # the peer computes every entry; compare on the pattern
            ref = ref * (k.inputs["S"].toarray() != 0)
        rtol = 1e-4 if k.dtype == "float32" else 1e-12
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * np.abs(ref).max(),
                                   err_msg=k.kernel)


def test_spgemm_cases_skip_an_absent_matrix_with_a_reason(tmp_path):
    import scipy.io

    # a matrix folder that holds another matrix only
    scipy.io.mmwrite(tmp_path / "other.mtx", sp.coo_matrix(np.eye(3)))
    skipped = []
    names = [k.kernel for k in gflops.kernels(quick=True, groups=["spgemm"],
                                                matrix_dir=tmp_path, skipped=skipped)]
    assert names == ["SpGEMM A@A er50k"]
    assert [w for w, _ in skipped] == ["SpGEMM A@A bcsstk13"]
    assert "neither in the matrix folder nor shipped" in skipped[0][1]


X86 = """processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 2100.000
flags\t\t: fpu sse sse2 sse4_1 sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 3900.012
flags\t\t: fpu sse sse2 sse4_1 sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimdhp sve
CPU implementer\t: 0x41
"""


def test_cpu_facts_read_model_flags_and_clocks():
    f = gflops.cpu_facts(X86)
    assert f["model"] == "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    assert f["flags"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                          "avx512_vnni"]
    assert f["mhz"] == [2100.0, 3900.012] and f["nominal_ghz"] == 2.1
    arm = gflops.cpu_facts(ARM)
    assert arm["flags"] == ["asimd", "asimdhp", "sve"] and arm["model"]
    assert arm["mhz"] == [] and arm["nominal_ghz"] is None
    none = gflops.cpu_facts("")  # no /proc/cpuinfo: unknown flags, not a crash
    assert none["flags"] is None and none["mhz"] == []


def test_measured_clock_is_a_plausible_number_or_none():
    mhz = gflops.measure_clock()
    assert mhz is None or 100 < mhz < 10_000


def test_header_states_the_cpu_facts():
    facts = gflops.machine_facts([1, 2], clock=False)
    for key in ("cpu", "simd_flags", "cpu_mhz", "measured_mhz", "load_average", "threads",
                "blas", "simd_path"):
        assert key in facts
    text = "\n".join(gflops.header_lines(facts))
    assert facts["cpu"] in text and "SIMD flags" in text and "SIMD path" in text
    assert "threads 1, 2" in text and "load average" in text and "BLAS" in text
    assert "nominal" in text  # no measured clock here
    facts.update(measured_mhz=3456.0, cpu_mhz=[2600.0, 2600.0], simd_flags=[])
    text = "\n".join(gflops.header_lines(facts))
    assert "measured 3456 MHz" in text and "2600 MHz reported" in text
    assert "SIMD flags: none" in text


def test_cli_json_round_trips(tmp_path):
    path = tmp_path / "gflops.json"
    out = subprocess.run([sys.executable, "-P", "-m", "sparsecore", "bench", "gflops", "--quick",
                          "--rounds", "1", "--cases", "monarch", "--json", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for word in ("# CPU:", "# SIMD flags:", "# clock:", "SIMD path", "dense GEMM (numpy)",
                 "Monarch", "useful GF/s", "% of dense peak"):
        assert word in out.stdout
    data = json.loads(path.read_text())
    assert data["suite"] == "gflops" and data["threads"] == [1]
    assert data["machine"]["cpu"] == gflops.cpu_facts()["model"]
    assert {(p["source"], p["dtype"]) for p in data["peaks"]} >= {("numpy", "float32"),
                                                                  ("numpy", "float64")}
    (rec,) = data["results"]
    assert rec["kernel"].startswith("Monarch") and rec["threads"] == 1
    assert rec["flops"] == 2 * (2 * 4096 * 64) * 256
    assert rec["gflops"] == pytest.approx(rec["flops"] / rec["ms"] / 1e6)
    assert rec["peer"] == "numpy stacked 1t"
    # what was written reads back as written
    assert json.loads(json.dumps(data)) == data


def test_unknown_cases_group_is_refused():
    args = argparse.Namespace(simd=None, cases=["nope"], threads=None, rounds=1, quick=True,
                              matrix_dir=None, json=None)
    with pytest.raises(ValueError, match="unknown group"):
        gflops.run(args)


def test_unknown_simd_level_errors_clearly():
    out = subprocess.run([sys.executable, "-P", "-m", "sparsecore", "bench", "gflops",
                          "--simd", "avx9"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "level must be one of" in out.stderr
    assert "Traceback" not in out.stderr and "## gflops" not in out.stdout


def test_forced_simd_sets_and_restores_the_level():
    from sparsecore._bench._harness import forced_simd

    with forced_simd("avx2"):
        assert sparsecore.get_simd() in ("avx2", "baseline")
        assert gflops.simd_path() == sparsecore.get_simd()
    auto = sparsecore.get_simd()
    with pytest.raises(RuntimeError):
        with forced_simd("avx2"):
            raise RuntimeError("a kernel failed")
    assert sparsecore.get_simd() == auto

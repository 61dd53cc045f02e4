"""The SpMM suite's decoding section: its cases build the products they
name (a few columns, each format), and sparsecore computes them."""
import argparse

import numpy as np

from sparsecore._bench import spmm as suite
from sparsecore.ops import spmm


def test_decode_cases_name_their_products(monkeypatch):
    seen = []
    monkeypatch.setattr(suite, "_run_cases",
                        lambda names, t, rounds, results, title: seen.extend(names))
    suite.section_decode(argparse.Namespace(quick=True), [1], 1, [])
    assert {name.split()[1] for name in seen} == {"2:4", "16x16", "8x1", "4x4", "2x2", "csr"}
    for name in seen:
        case = suite.make_case(name)
        S, X, W = case.inputs["S"], case.inputs["X"], case.inputs["W"]
        batch = int(name.split()[-1])
        assert X.shape == ((S.shape[1],) if batch == 1 else (S.shape[1], batch)) and batch <= 8
        np.testing.assert_allclose(spmm(S, X), W @ X, rtol=1e-4, atol=1e-4)

"""Kronecker-structured SBL: the structured posterior against the dense
formulas, planted recovery, the AM objective, the M-steps, and bad input.

Tolerances: the structured E-step equals the dense-formula posterior to a
relative 1e-9 (float64/complex128; both sides carry eigen/inverse round-off
of well-conditioned 10-60 column problems). Recovery bounds are NMSE in dB
on fixed seeds, a few dB above what the algorithm reaches, so they fail on
a broken algorithm but not on round-off.
"""
import math
import warnings
from functools import reduce

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sparsecore import datasets
from sparsecore._ext import _kron
from sparsecore.formats import KroneckerOperator
from sparsecore.linear_model import kronecker_posterior, kronecker_sbl, sbl
from sparsecore.linear_model._kronecker_sbl import _State, _estep


def _factors(rng, shapes, complex_):
    out = []
    for m, n in shapes:
        A = rng.standard_normal((m, n))
        if complex_:
            A = A + 1j * rng.standard_normal((m, n))
        out.append(A)
    return out


def _dense_posterior(factors, gammas, s2, Y):
    A = reduce(np.kron, factors)
    g = reduce(np.kron, gammas)
    Sy = s2 * np.eye(A.shape[0]) + (A * g) @ A.conj().T
    Si = np.linalg.inv(Sy)
    Sx = np.diag(g) - (g[:, None] * A.conj().T) @ Si @ (A * g)
    mu = g[:, None] * (A.conj().T @ (Si @ Y))
    sign, logdet = np.linalg.slogdet(Sy)
    quad = float(np.real(np.sum(Y.conj() * (Si @ Y))))
    resid = Y - A @ mu
    trace = float(np.real(np.trace(A @ Sx @ A.conj().T)))
    return mu, np.real(np.diag(Sx)), logdet, quad, float(np.sum(np.abs(resid) ** 2)), trace


def _nmse_db(est, ref):
    return 10 * np.log10(np.sum(np.abs(est - ref) ** 2) / np.sum(np.abs(ref) ** 2))


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize(
    "shapes",
    [[(5, 7)], [(3, 5), (4, 6)], [(3, 4), (4, 3), (2, 5)], [(6, 3), (2, 4)]],
)
@pytest.mark.parametrize("n_rhs", [1, 3])
def test_structured_posterior_equals_dense(rng, complex_, shapes, n_rhs):
    factors = _factors(rng, shapes, complex_)
    gammas = [rng.uniform(0.05, 3.0, n) for _, n in shapes]
    M = math.prod(m for m, _ in shapes)
    Y = rng.standard_normal((M, n_rhs))
    if complex_:
        Y = Y + 1j * rng.standard_normal((M, n_rhs))
    s2 = 0.37
    mu_ref, var_ref, logdet, quad, resid, trace = _dense_posterior(factors, gammas, s2, Y)
    y = Y[:, 0] if n_rhs == 1 else Y
    mu, var = kronecker_posterior(factors, gammas, s2, y)
    np.testing.assert_allclose(mu.reshape(-1, n_rhs), mu_ref, rtol=1e-9, atol=1e-9 * np.abs(mu_ref).max())
    np.testing.assert_allclose(var, var_ref, rtol=1e-9, atol=1e-9 * var_ref.max())
    # the scalar statistics the EM loop uses
    work = np.complex128 if complex_ else np.float64
    state = _State([np.asarray(A, dtype=work) for A in factors], gammas, [None] * len(shapes))
    _, _, lam, stats = _estep(state, np.ascontiguousarray(Y, dtype=work).reshape(-1), n_rhs, s2)
    np.testing.assert_allclose(stats, [logdet, quad, resid, trace / 1.0], rtol=1e-9)
    np.testing.assert_allclose(lam, var_ref + np.mean(np.abs(mu_ref) ** 2, axis=1), rtol=1e-9)


def test_first_objective_is_the_dense_marginal_likelihood(rng):
    prob = datasets.make_kronecker_sparse([(6, 8), (5, 7)], 2, snr_db=15, seed=3)
    with pytest.warns(ConvergenceWarning):
        res = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, max_iter=1)
    # the first E-step runs at the flat starting prior
    A = reduce(np.kron, prob.factors)
    M = A.shape[0]
    level = 100 * float(prob.y @ prob.y) / np.sum(A * A)
    Sy = prob.noise_var * np.eye(M) + level * A @ A.T
    ref = np.linalg.slogdet(Sy)[1] + prob.y @ np.linalg.solve(Sy, prob.y)
    assert res.objective[0] == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("method", ["svd", "am"])
def test_planted_recovery_real_two_modes(method):
    for seed in range(3):
        prob = datasets.make_kronecker_sparse([(24, 40), (24, 40)], 3, snr_db=25, seed=seed)
        res = kronecker_sbl(prob.factors, prob.y, method=method, noise_var=prob.noise_var)
        assert res.converged
        assert _nmse_db(res.coef, prob.coef) < -30
        # every clearly nonzero true index survives the pruning
        big = np.abs(prob.coef) > 0.05 * np.abs(prob.coef).max()
        assert np.all(res.coef[big] != 0)


@pytest.mark.parametrize("method", ["svd", "am"])
def test_planted_recovery_complex_three_modes(method):
    prob = datasets.make_kronecker_sparse([(8, 12), (9, 12), (10, 12)], 2, snr_db=25,
                                          complex=True, seed=5)
    res = kronecker_sbl(prob.factors, prob.y, method=method, noise_var=prob.noise_var)
    assert res.coef.dtype == np.complex128
    assert _nmse_db(res.coef, prob.coef) < -30
    # the structured operator reproduces y from the estimate
    K = KroneckerOperator(prob.factors)
    r = K @ res.coef - prob.y
    assert np.vdot(r, r).real / prob.y.size < 3 * prob.noise_var


def test_noise_variance_is_estimated():
    prob = datasets.make_kronecker_sparse([(20, 30), (20, 30)], 3, snr_db=15, seed=11)
    res = kronecker_sbl(prob.factors, prob.y)
    assert 0.5 * prob.noise_var < res.noise_var < 2 * prob.noise_var
    assert _nmse_db(res.coef, prob.coef) < -20


def test_multiple_measurement_vectors(rng):
    prob = datasets.make_kronecker_sparse([(12, 20), (12, 20)], 2, snr_db=40, seed=2)
    K = KroneckerOperator(prob.factors)
    X = np.stack([prob.coef, -2 * prob.coef, 0.5 * prob.coef], axis=1)
    Y = K @ X + 1e-3 * rng.standard_normal((K.shape[0], 3))
    res = kronecker_sbl(prob.factors, Y, noise_var=1e-6)
    assert res.coef.shape == X.shape
    assert _nmse_db(res.coef, X) < -30


def test_float32_in_float32_out():
    prob = datasets.make_kronecker_sparse([(10, 16), (10, 16)], 2, snr_db=30, seed=4)
    res = kronecker_sbl([A.astype(np.float32) for A in prob.factors], prob.y.astype(np.float32),
                        noise_var=prob.noise_var)
    assert res.coef.dtype == np.float32 and res.posterior_var.dtype == np.float32
    assert _nmse_db(res.coef, prob.coef) < -25


def test_one_mode_is_classic_sbl():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 60))
    x = np.zeros(60)
    x[[3, 17, 40]] = [1.0, -0.7, 2.0]
    y = X @ x + 0.01 * rng.standard_normal(30)
    a = kronecker_sbl([X], y, noise_var=1e-4, prune=1e-3)
    b = sbl(X, y, noise_var=1e-4, prune=1e-3)
    assert a.n_iter == b.n_iter
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.gammas[0], b.gamma, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("shapes", [[(6, 9), (7, 9)], [(4, 6), (5, 6), (3, 6)]])
def test_am_objective_never_increases(complex_, shapes):
    rng = np.random.default_rng(21)
    factors = _factors(rng, shapes, complex_)
    x = [np.zeros(n) for _, n in shapes]
    for v in x:
        v[rng.choice(v.size, 2, replace=False)] = rng.standard_normal(2)
    y = reduce(np.kron, [A @ v for A, v in zip(factors, x)])
    y = y + 0.05 * np.std(y) * rng.standard_normal(y.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for noise_var in (0.05**2 * np.var(y), None):
            res = kronecker_sbl(factors, y, method="am", noise_var=noise_var, prune=0.0,
                                max_iter=60, tol=0.0)
            obj = res.objective
            assert len(obj) == 60
            steps = np.diff(obj)
            assert np.all(steps <= 1e-9 * np.abs(obj[:-1])), steps.max()


def test_m_steps_exact_on_kronecker_moments(rng):
    ks = (4, 3, 5)
    g = [rng.uniform(0.1, 2, k) for k in ks]
    lam = reduce(np.kron, g)
    out = [np.empty(k) for k in ks]
    assert _kron.svd_mstep(lam, out)
    np.testing.assert_allclose(reduce(np.kron, out), lam, rtol=1e-12)
    start = [np.ones(k) for k in ks]
    _kron.am_mstep(lam, start, 200, 1e-13)
    np.testing.assert_allclose(reduce(np.kron, start), lam, rtol=1e-10)
    # the AM update is the exact minimiser of one block: Q never increases
    lam2 = rng.uniform(0.01, 3, lam.size)

    def Q(gs):
        G = reduce(np.kron, gs)
        return np.sum(lam2 / G + np.log(G))

    gs = [np.ones(k) for k in ks]
    prev = Q(gs)
    for _ in range(15):
        _kron.am_mstep(lam2, gs, 1, 0.0)
        cur = Q(gs)
        assert cur <= prev + 1e-12 * abs(prev)
        prev = cur
    assert not _kron.svd_mstep(np.zeros(lam.size), out)


def test_pattern_coupled_irs_channel():
    prob = datasets.make_irs_channel(snr_db=20, seed=20_002)
    res = kronecker_sbl(prob.factors, prob.y, method="am", noise_var=prob.noise_var,
                        block="pattern_coupled", beta=(0.8, 0.0, 0.8),
                        prune=(1e-2, 1e-1, 1e-2), max_iter=150)
    assert 10 * np.log10(prob.channel_nmse(res.coef)) < -15
    svd = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var)
    assert 10 * np.log10(prob.channel_nmse(svd.coef)) < -20


def test_irs_problem_is_consistent():
    prob = datasets.make_irs_channel(snr_db=300, seed=1)
    K = KroneckerOperator(prob.factors)
    assert K.shape == (288, 5832)
    np.testing.assert_allclose(K @ prob.coef, prob.y, rtol=1e-9, atol=1e-9 * np.abs(prob.y).max())
    assert prob.channel_nmse(prob.coef) < 1e-20
    assert np.count_nonzero(prob.coef) == 9


def test_convergence_warning_and_result_fields():
    prob = datasets.make_kronecker_sparse([(10, 16), (10, 16)], 2, snr_db=20, seed=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        res = kronecker_sbl(prob.factors, prob.y, max_iter=1)
    assert res.n_iter == 1 and not res.converged
    assert len(res.gammas) == 2 and res.gammas[0].shape == (16,)
    assert res.posterior_var.shape == (256,) and np.all(res.posterior_var >= 0)


def test_init_options(rng):
    prob = datasets.make_kronecker_sparse([(12, 20), (12, 20)], 2, snr_db=30, seed=6)
    ref = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var)
    warm = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, init=list(ref.gammas))
    assert warm.n_iter <= 3
    np.testing.assert_allclose(warm.coef, ref.coef, rtol=1e-3, atol=1e-4)
    tight = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, init=0.01)
    assert _nmse_db(tight.coef, prob.coef) < -25


def test_inputs_not_modified():
    prob = datasets.make_kronecker_sparse([(8, 10), (8, 10)], 2, snr_db=20, seed=0, complex=True)
    factors = [A.copy() for A in prob.factors]
    y = prob.y.copy()
    kronecker_sbl(prob.factors, prob.y, method="am")
    for A, B in zip(factors, prob.factors):
        np.testing.assert_array_equal(A, B)
    np.testing.assert_array_equal(y, prob.y)


def test_bad_input():
    prob = datasets.make_kronecker_sparse([(6, 8), (5, 8)], 2, snr_db=20, seed=0)
    F, y = prob.factors, prob.y
    with pytest.raises(ValueError, match="y has 29 rows but the factors .* make 30"):
        kronecker_sbl(F, y[:-1])
    with pytest.raises(ValueError, match="NaN or infinity"):
        kronecker_sbl(F, np.where(np.arange(30) == 3, np.nan, y))
    bad = [F[0].copy(), F[1].copy()]
    bad[1][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"factors\[1\] contains NaN"):
        kronecker_sbl(bad, y)
    with pytest.raises(ValueError, match="all zero"):
        kronecker_sbl(F, np.zeros(30))
    with pytest.raises(ValueError, match="noise_var must be a finite positive"):
        kronecker_sbl(F, y, noise_var=-1.0)
    with pytest.raises(ValueError, match="noise_var must be positive, got 0"):
        kronecker_sbl(F, y, noise_var=0.0)
    with pytest.raises(TypeError, match="noise_var"):
        kronecker_sbl(F, y, noise_var="1")
    with pytest.raises(ValueError, match="method must be one of"):
        kronecker_sbl(F, y, method="em")
    with pytest.raises(ValueError, match="block must be"):
        kronecker_sbl(F, y, block="group")
    with pytest.raises(ValueError, match="pattern_coupled.*method='am'"):
        kronecker_sbl(F, y, block="pattern_coupled")
    with pytest.raises(ValueError, match="beta values must lie in"):
        kronecker_sbl(F, y, method="am", block="pattern_coupled", beta=1.5)
    with pytest.raises(ValueError, match="prune must have one value per mode"):
        kronecker_sbl(F, y, prune=(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="prune values must lie in"):
        kronecker_sbl(F, y, prune=1.0)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        kronecker_sbl(F, y, max_iter=0)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        kronecker_sbl(F, y, tol=-1)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        kronecker_sbl(F, y, max_iter=2.5)
    with pytest.raises(ValueError, match=r"init\[0\] must be 8"):
        kronecker_sbl(F, y, init=[np.ones(7), np.ones(8)])
    with pytest.raises(ValueError, match="init must be a positive float"):
        kronecker_sbl(F, y, init=-2.0)
    with pytest.raises(ValueError, match="n_threads=0"):
        kronecker_sbl(F, y, n_threads=0)
    with pytest.raises(ValueError, match="1-D, or 2-D"):
        kronecker_sbl(F, y.reshape(30, 1, 1))
    with pytest.raises(TypeError, match="wrap it in a list"):
        kronecker_sbl(np.ones((3, 3)), y)
    with pytest.raises(ValueError, match="gammas"):
        kronecker_posterior(F, [np.ones(8), -np.ones(8)], 1.0, y)


def test_n_threads_runs():
    prob = datasets.make_kronecker_sparse([(10, 16), (10, 16)], 2, snr_db=30, seed=1)
    a = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var, n_threads=1)
    b = kronecker_sbl(prob.factors, prob.y, noise_var=prob.noise_var)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-10, atol=1e-12)

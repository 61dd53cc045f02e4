"""Generated Kronecker-structured sparse recovery problems: the synthetic
setting and the IRS-MIMO channel of He & Joseph (IEEE TSP 2024, arXiv
2307.14719), for tests, benchmarks and the demo."""
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "IRSChannelProblem",
    "KroneckerProblem",
    "irs_training",
    "make_irs_channel",
    "make_kronecker_sparse",
    "steering_dictionary",
]


@dataclass(frozen=True)
class KroneckerProblem:
    """``y = (A_1 kron … kron A_I) coef + noise``.

    Attributes
    ----------
    factors : tuple of ndarray of shape (m_i, n_i)
    y : ndarray of shape (M,)
    coef : ndarray of shape (N,)
        The planted sparse vector, ``x_1 kron ... kron x_I``.
    noise_var : float
        Variance of each noise entry (complex: of the complex entry).
    support : tuple of ndarray of int
        The nonzero indices of each x_i.
    """

    factors: tuple
    y: np.ndarray
    coef: np.ndarray
    noise_var: float
    support: tuple

    def nmse(self, coef):
        """``||coef - x||^2 / ||x||^2``.

        Parameters
        ----------
        coef : ndarray
            Estimate of the true coefficients ``self.coef`` (same shape).

        Returns
        -------
        float
        """
        return float(np.sum(np.abs(coef - self.coef) ** 2) / np.sum(np.abs(self.coef) ** 2))


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _gauss(rng, shape, complex_):
    if complex_:
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2)
    return rng.standard_normal(shape)


def make_kronecker_sparse(shapes, n_nonzero, *, snr_db=20.0, complex=False, seed=0):
    """A planted Kronecker-supported sparse recovery problem.

    The setting of He & Joseph's synthetic experiments: Gaussian factors
    ``A_i`` (entries N(0, 1), or CN(0, 1) when complex), ``x = x_1 kron ...
    kron x_I`` with ``n_nonzero`` Gaussian entries per ``x_i`` at random
    places, and white noise at ``snr_db`` with SNR = (||A x||^2 / M) / noise
    variance.

    Parameters
    ----------
    shapes : sequence of (int, int)
        ``(m_i, n_i)`` per mode.
    n_nonzero : int or sequence of int
        Nonzeros per mode.
    snr_db : float, default=20.0
    complex : bool, default=False
    seed : int or numpy.random.Generator, default=0

    Returns
    -------
    KroneckerProblem
    """
    rng = _rng(seed)
    shapes = [(int(m), int(n)) for m, n in shapes]
    if isinstance(n_nonzero, (int, np.integer)):
        n_nonzero = [int(n_nonzero)] * len(shapes)
    factors, parts, clean, support = [], [], [], []
    for (m, n), k in zip(shapes, n_nonzero):
        if not 0 < k <= n:
            raise ValueError(f"n_nonzero must be in [1, {n}] for a mode with {n} columns, got {k}")
        A = _gauss(rng, (m, n), complex)
        idx = np.sort(rng.choice(n, size=k, replace=False))
        x = np.zeros(n, dtype=A.dtype)
        x[idx] = _gauss(rng, k, complex)
        factors.append(A)
        parts.append(x)
        clean.append(A @ x)
        support.append(idx)
    y_clean = _kron_all(clean)
    coef = _kron_all(parts)
    M = y_clean.shape[0]
    noise_var = float(np.vdot(y_clean, y_clean).real) / M / 10 ** (snr_db / 10)
    noise = _gauss(rng, M, complex) * math.sqrt(noise_var)
    return KroneckerProblem(tuple(factors), y_clean + noise, coef, noise_var, tuple(support))


def _kron_all(vectors):
    out = vectors[0]
    for v in vectors[1:]:
        out = np.kron(out, v)
    return out


def steering_dictionary(n_antennas, grid):
    """Uniform-linear-array steering vectors on a uniform grid of directions.

    The directions have cosines ``2 t / grid - 1``, t = 0, ..., grid - 1, and
    ``D[e, t] = exp(1j pi (2 t / grid - 1) e) / sqrt(n_antennas)`` (unit norm).

    Parameters
    ----------
    n_antennas : int
        Antennas of the array (rows).
    grid : int
        Directions of the grid (columns).

    Returns
    -------
    ndarray of complex128, shape (n_antennas, grid)
    """
    e = np.arange(n_antennas)[:, None]
    theta = 2.0 * np.arange(grid)[None, :] / grid - 1.0
    return np.exp(1j * np.pi * theta * e) / math.sqrt(n_antennas)


@dataclass(frozen=True)
class IRSChannelProblem:
    """Uplink channel estimation in an IRS-aided MIMO system, in the angular
    domain: ``y = (H_p1 kron H_p2 kron A_bs) coef + noise``.

    Attributes
    ----------
    factors : tuple of ndarray
        ``(H_p1, H_p2, A_bs)``: IRS patterns x grid, pilots x grid and BS
        antennas x grid, all complex.
    y : ndarray of shape (n_patterns * n_pilots * n_bs,)
        Received pilots, C-ordered as (pattern, pilot, BS antenna).
    coef : ndarray of shape (grid ** 3,)
        The true angular-domain channel (IRS angle difference, MS departure,
        BS arrival); block-sparse in the first and last modes.
    noise_var : float
    channels : ndarray of shape (n_patterns, n_ms * n_bs)
        The true cascaded channels ``vec(H_2 diag(theta_p) H_1)`` (column
        major) for each IRS pattern theta_p.
    channel_factors : tuple of ndarray
        ``(H_p1, conj(A_ms), A_bs)``: the channel of pattern p is
        ``(H_p1[p] kron conj(A_ms) kron A_bs) coef``.
    """

    factors: tuple
    y: np.ndarray
    coef: np.ndarray
    noise_var: float
    channels: np.ndarray
    channel_factors: tuple

    def channel_nmse(self, coef):
        """Mean over the IRS patterns of ``||H_hat_p - H_p||^2 / ||H_p||^2``
        (the paper's metric), H_hat_p built from the angular estimate.

        Parameters
        ----------
        coef : ndarray
            Estimated angular coefficients (the solution of the problem).

        Returns
        -------
        float
            The mean NMSE over the IRS patterns.
        """
        from sparsecore.formats import KroneckerOperator

        Hp1, A_ms, A_bs = self.channel_factors
        errs = []
        for p, H in enumerate(self.channels):
            est = KroneckerOperator([Hp1[p : p + 1], A_ms, A_bs]) @ coef
            errs.append(np.sum(np.abs(est - H) ** 2) / np.sum(np.abs(H) ** 2))
        return float(np.mean(errs))


def irs_training(*, n_ms=6, n_irs=256, n_pilots=3, n_patterns=6, seed=0):
    """QPSK pilots and random +-1 IRS reflection patterns, as the paper draws them.

    Parameters
    ----------
    n_ms : int, default=6
        Antennas of the mobile station.
    n_irs : int, default=256
        Elements of the IRS.
    n_pilots : int, default=3
        Pilot symbols per reflection pattern.
    n_patterns : int, default=6
        Reflection patterns.
    seed : int or numpy.random.Generator, default=0

    Returns
    -------
    pilots : ndarray of complex128, shape (n_ms, n_pilots)
        Unit total power per pilot.
    patterns : ndarray of float64, shape (n_irs, n_patterns)
        Unit-norm columns of +-1 entries.
    """
    rng = _rng(seed)
    qpsk = np.array([1 + 1j, 1 - 1j, -1 + 1j, -1 - 1j]) / math.sqrt(2)
    pilots = qpsk[rng.integers(0, 4, size=(n_ms, n_pilots))] / math.sqrt(n_ms)
    patterns = (rng.integers(0, 2, size=(n_irs, n_patterns)) * 2 - 1) / math.sqrt(n_irs)
    return pilots, patterns


def make_irs_channel(snr_db=12.0, *, n_ms=6, n_bs=16, n_irs=256, grid=18, n_pilots=3,
                     n_patterns=6, angle_spread=3, pilots=None, patterns=None, seed=0):
    """The IRS-MIMO channel-estimation problem of He & Joseph, Sec. V.

    A mobile station with ``n_ms`` antennas sends ``n_pilots`` QPSK pilots
    through an IRS of ``n_irs`` elements (``n_patterns`` random +-1
    reflection patterns) to a base station with ``n_bs`` antennas. Each link
    has one path cluster of ``angle_spread`` adjacent grid directions (at the
    IRS arrival and the BS arrival) with CN(0, 1) gains, and one departure
    direction (MS and IRS), all on a ``grid``-point angle grid. With the
    paper's defaults, M = 6 * 3 * 16 = 288 measurements and N = 18^3 = 5832
    unknowns. SNR is the mean received pilot power over the noise variance.

    ``pilots`` (n_ms x n_pilots) and ``patterns`` (n_irs x n_patterns) may be
    given to keep them fixed over many channel draws, as the paper's
    experiment does; by default they are drawn from ``seed`` too.

    Parameters
    ----------
    snr_db : float, default=12.0
        Signal-to-noise ratio in dB.
    n_ms, n_bs, n_irs : int, default=6, 16, 256
        Antennas of the mobile and base stations, elements of the IRS.
    grid : int, default=18
        Points of the angle grid of every dictionary.
    n_pilots, n_patterns : int, default=3, 6
        Pilots and IRS reflection patterns (see :func:`irs_training`).
    angle_spread : int, default=3
        Adjacent grid directions of each arrival cluster.
    pilots : ndarray of shape (n_ms, n_pilots), optional
    patterns : ndarray of shape (n_irs, n_patterns), optional
        Fixed training; drawn from ``seed`` when None.
    seed : int or numpy.random.Generator, default=0

    Returns
    -------
    IRSChannelProblem
    """
    rng = _rng(seed)
    G, L = grid, angle_spread
    A_bs = steering_dictionary(n_bs, G)
    A_irs = steering_dictionary(n_irs, G)
    A_ms = steering_dictionary(n_ms, G)
    if pilots is None or patterns is None:
        p0, t0 = irs_training(n_ms=n_ms, n_irs=n_irs, n_pilots=n_pilots,
                              n_patterns=n_patterns, seed=rng)
        pilots = p0 if pilots is None else pilots
        patterns = t0 if patterns is None else patterns
    pilots = np.asarray(pilots, dtype=complex)
    patterns = np.array(patterns, dtype=float)  # a copy: redrawn columns stay local
    if pilots.shape != (n_ms, n_pilots) or patterns.shape != (n_irs, n_patterns):
        raise ValueError(
            f"pilots must be {n_ms} x {n_pilots} and patterns {n_irs} x {n_patterns}; got "
            f"{pilots.shape} and {patterns.shape}"
        )

    aod_ms = int(rng.integers(G))
    aoa_irs = (int(rng.integers(G - L + 1)) + np.arange(L)) % G
    aod_irs = int(rng.integers(G))
    aoa_bs = (int(rng.integers(G - L + 1)) + np.arange(L)) % G
    gain_irs = _gauss(rng, L, True)
    gain_bs = _gauss(rng, L, True)
    c1 = math.sqrt(n_ms * n_irs / L)
    c2 = math.sqrt(n_bs * n_irs / L)
    # H1: MS -> IRS (n_irs x n_ms), H2: IRS -> BS (n_bs x n_irs)
    H1 = c1 * np.outer(A_irs[:, aoa_irs] @ gain_irs, A_ms[:, aod_ms].conj())
    H2 = c2 * np.outer(A_bs[:, aoa_bs] @ gain_bs, A_irs[:, aod_irs].conj())

    def cascaded(theta):
        return (H2 * theta[None, :]) @ H1  # n_bs x n_ms

    for p in range(n_patterns):  # the paper redraws a pattern that nulls the channel
        while np.linalg.norm(cascaded(patterns[:, p])) < 1e-5:
            patterns[:, p] = (rng.integers(0, 2, size=n_irs) * 2 - 1) / math.sqrt(n_irs)
    channels = np.array([cascaded(patterns[:, p]).T.reshape(-1) for p in range(n_patterns)])
    received = np.array([(cascaded(patterns[:, p]) @ pilots).T.reshape(-1) for p in range(n_patterns)])
    y_clean = received.reshape(-1)

    # dictionaries: the IRS response to direction pair (first grid point,
    # t) under pattern p depends only on the difference of directions
    H_p1 = patterns.T @ (A_irs[:, :1] * A_irs.conj())  # n_patterns x G
    H_p2 = pilots.T @ A_ms.conj()  # n_pilots x G
    # the angular channel: IRS difference (aod_irs - aoa) mod G, MS aod, BS aoa
    x1 = np.zeros(G, dtype=complex)
    x1[(aod_irs - aoa_irs) % G] = c1 * c2 * gain_irs
    x2 = np.zeros(G)
    x2[aod_ms] = 1.0
    x3 = np.zeros(G, dtype=complex)
    x3[aoa_bs] = gain_bs
    coef = np.kron(x1, np.kron(x2, x3))

    power = float(np.vdot(y_clean, y_clean).real) / y_clean.size
    noise_var = power / 10 ** (snr_db / 10)
    noise = _gauss(rng, y_clean.size, True) * math.sqrt(noise_var)
    return IRSChannelProblem(
        factors=(H_p1, H_p2, A_bs),
        y=y_clean + noise,
        coef=coef,
        noise_var=noise_var,
        channels=channels,
        channel_factors=(H_p1, A_ms.conj(), A_bs),
    )

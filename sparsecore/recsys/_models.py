"""Base recommenders trained with sparse embeddings: BPR matrix
factorisation, LightGCN and NeuMF, each with its multiply-add counts.

- BPR-MF: Rendle, Freudenthaler, Gantner and Schmidt-Thieme, "BPR: Bayesian
  Personalized Ranking from Implicit Feedback" (UAI 2009).
- LightGCN: He, Deng, Wang, Li, Zhang and Wang, "LightGCN: Simplifying and
  Powering Graph Convolution Network for Recommendation" (SIGIR 2020).
- NeuMF: He, Liao, Zhang, Nie, Hu and Chua, "Neural Collaborative Filtering"
  (WWW 2017).

Multiply-add (MAC) counts follow the convention of RigL (Evci et al. 2020):
a sparse implementation multiplies only where the weight operand is non-zero;
the backward pass of a layer costs two forward passes (input and weight
gradients). Where the inputs are themselves sparse (embedding rows), the
counts use the actual supports.
"""
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BPRMF", "LightGCN", "NeuMF", "RecModel", "normalized_adjacency"]


def _normal(shape, std, gen, dtype):
    return nn.Parameter(torch.randn(*shape, generator=gen, dtype=dtype) * std)


def _pair_loss(pos, neg, loss):
    if loss == "bpr":
        return -F.logsigmoid(pos - neg).mean()
    return (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))


def _row_nnz(mask):
    return mask.sum(1)


class RecModel(nn.Module):
    """What the estimator needs from a base model.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`.

    Attributes
    ----------
    sides : dict of str to {"user", "item"}
        The masked tables (parameters named like the attributes) and whose
        rows they hold.
    dot_product : bool
        Whether scores are dot products of a user and an item vector (then
        :meth:`scoring_embeddings` returns them and top-k runs in the sparse
        core).
    """

    sides = {}
    dot_product = True

    def masked_parameters(self):
        """The masked tables: dict of name (a key of ``sides``) to parameter.

        Returns
        -------
        dict of str to torch.nn.Parameter
        """
        return {name: getattr(self, name) for name in self.sides}

    def budget_groups(self, budget):
        """``per_tensor``: one budget per table; ``shared_user_item``: user
        and item tables of the same role share one.

        Parameters
        ----------
        budget : {'per_tensor', 'shared_user_item'}
            How the non-zero budget is shared.

        Returns
        -------
        list of list of str
            Groups of tensor names (keys of ``self.sides``), one group per
            budget.
        """
        names = list(self.sides)
        if budget == "per_tensor":
            return [[n] for n in names]
        return self._shared_groups()

    def _shared_groups(self):
        return [list(self.sides)]

    def loss(self, u, i, j, l2, loss="bpr"):
        """Training loss of a batch of (user, positive item, negative item)
        triples.

        Parameters
        ----------
        u, i, j : torch.Tensor of int64, shape (b,)
            Users, their positive items and sampled negative items.
        l2 : float
            Weight of the L2 penalty: the squared norms of the batch's
            embedding rows (before any propagation) over ``2 * b``.
        loss : {"bpr", "bce"}, default="bpr"
            ``"bpr"``: mean ``-log sigmoid(s_ui - s_uj)``; ``"bce"``: binary
            cross-entropy with positives labelled 1 and negatives 0.

        Returns
        -------
        torch.Tensor
            A scalar.
        """
        raise NotImplementedError

    def scoring_embeddings(self):
        """User and item vectors whose dot products are the scores (models
        with ``dot_product = True``).

        Returns
        -------
        users, items : torch.Tensor of shape (n_users, d), (n_items, d)
        """
        raise NotImplementedError

    def train_macs(self, u, i, j, masks):
        """MACs of one step on the triples: dict with ``fwd_dense``,
        ``fwd``, ``bwd_dense``, ``bwd`` (gradients of active weights only)
        and ``bwd_full`` (gradients of every weight, as gradient growth
        needs).

        Parameters
        ----------
        u, i, j : torch.Tensor of int64
            Users, positive and negative items of the triples.
        masks : dict of str to torch.Tensor
            Boolean masks of the embedding tables.

        Returns
        -------
        dict of str to int
        """
        raise NotImplementedError

    def inference_macs(self, masks):
        """MACs of scoring every item for every user: (dense, sparse).

        Parameters
        ----------
        masks : dict of str to torch.Tensor
            Boolean masks of the embedding tables.

        Returns
        -------
        dense, sparse : int
            MACs with dense and with masked tables.
        """
        raise NotImplementedError


class BPRMF(RecModel):
    """Matrix factorisation ``score(u, i) = p_u · q_i`` (no biases).

    Parameters
    ----------
    n_users, n_items : int
        Numbers of users and items.
    n_factors : int
        Embedding dimension.
    init_std : float, default=0.1
        Standard deviation of the normal initial embeddings.
    generator : torch.Generator or None, default=None
        Random generator of the initialisation.
    dtype : torch.dtype, default=torch.float32
        Parameter type.
    """

    sides = {"user": "user", "item": "item"}

    def __init__(self, n_users, n_items, n_factors, *, init_std=0.1, generator=None,
                 dtype=torch.float32):
        super().__init__()
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.user = _normal((n_users, n_factors), init_std, generator, dtype)
        self.item = _normal((n_items, n_factors), init_std, generator, dtype)

    def loss(self, u, i, j, l2, loss="bpr"):
        pu, qi, qj = self.user[u], self.item[i], self.item[j]
        pos, neg = (pu * qi).sum(1), (pu * qj).sum(1)
        reg = (pu.square().sum() + qi.square().sum() + qj.square().sum()) / (2 * len(u))
        return _pair_loss(pos, neg, loss) + l2 * reg

    def scoring_embeddings(self):
        return self.user, self.item

    def train_macs(self, u, i, j, masks):
        mu, mi, mj = masks["user"][u], masks["item"][i], masks["item"][j]
        k, b = self.n_factors, len(u)
        fwd = int((mu & mi).sum() + (mu & mj).sum())
        # gradient of every user weight: c_i q_i - c_j q_j where q is non-zero;
        # of every item weight: c p_u where p_u is non-zero
        full = int(mi.sum() + mj.sum() + 2 * mu.sum())
        return {"fwd_dense": 2 * k * b, "fwd": fwd, "bwd_dense": 4 * k * b,
                "bwd": 2 * fwd, "bwd_full": full}

    def inference_macs(self, masks):
        cu = masks["user"].sum(0).double()
        ci = masks["item"].sum(0).double()
        return self.n_users * self.n_items * self.n_factors, int((cu * ci).sum())


def normalized_adjacency(R):
    """``D^-1/2 A D^-1/2`` of the user-item bipartite graph ``A = [[0, R],
    [R^T, 0]]`` (users first), as a scipy CSR array (isolated nodes: rows of
    zeros)."""
    R = sp.csr_array(R, dtype=np.float64)
    R.data[:] = 1.0
    n_users, n_items = R.shape
    A = sp.block_array([[None, R], [R.T, None]], format="csr",
                       dtype=np.float64)
    deg = np.asarray(A.sum(1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    D = sp.diags_array(inv)
    out = (D @ A @ D).tocsr()
    out.sort_indices()
    return out


class LightGCN(RecModel):
    """LightGCN: layer embeddings ``E_{l+1} = A_hat E_l`` averaged over
    layers ``0..L``; ``score(u, i) = e_u · e_i``. One table of users then
    items, as in LightGCN, kept as two parameters so the user and item
    budgets can be separate or shared.

    Parameters
    ----------
    n_users, n_items : int
        Numbers of users and items.
    n_factors : int
        Embedding dimension.
    adjacency : scipy.sparse matrix/array
        ``A_hat``, (n_users + n_items) square, users first (see
        :func:`normalized_adjacency`).
    n_layers : int, default=3
        Number of propagation layers ``L``.
    init_std : float, default=0.1
        Standard deviation of the normal initial embeddings.
    generator : torch.Generator or None, default=None
        Random generator of the initialisation.
    dtype : torch.dtype, default=torch.float32
        Parameter type.
    """

    sides = {"user": "user", "item": "item"}

    def __init__(self, n_users, n_items, n_factors, adjacency, *, n_layers=3, init_std=0.1,
                 generator=None, dtype=torch.float32):
        super().__init__()
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.n_layers = n_layers
        self.user = _normal((n_users, n_factors), init_std, generator, dtype)
        self.item = _normal((n_items, n_factors), init_std, generator, dtype)
        A = adjacency.tocsr()
        self.adjacency = A
        self.register_buffer("graph", torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr.astype(np.int64)),
            torch.from_numpy(A.indices.astype(np.int64)),
            torch.from_numpy(A.data).to(dtype), size=A.shape))
        self._degree = torch.from_numpy(np.diff(A.indptr).astype(np.float64))
        self._layer_nnz = [0] * (n_layers + 1)

    def propagate(self):
        """The layer-averaged embeddings ``mean_l A_hat^l E_0``.

        Returns
        -------
        users, items : torch.Tensor of shape (n_users, n_factors), (n_items, n_factors)
        """
        e = torch.cat([self.user, self.item])
        out = e
        nnz = [int((e != 0).sum(1).double() @ self._degree)] if self.training else []
        for _ in range(self.n_layers):
            e = self.graph @ e
            out = out + e
            if self.training:
                nnz.append(int((e.detach() != 0).sum(1).double() @ self._degree))
        self._propagation_macs = nnz[: self.n_layers]  # input supports of each layer
        out = out / (self.n_layers + 1)
        return out[: self.n_users], out[self.n_users:]

    def loss(self, u, i, j, l2, loss="bpr"):
        users, items = self.propagate()
        self._final = (users.detach(), items.detach())
        pu, qi, qj = users[u], items[i], items[j]
        pos, neg = (pu * qi).sum(1), (pu * qj).sum(1)
        reg = (self.user[u].square().sum() + self.item[i].square().sum()
               + self.item[j].square().sum()) / (2 * len(u))
        return _pair_loss(pos, neg, loss) + l2 * reg

    def scoring_embeddings(self):
        return self.propagate()

    def train_macs(self, u, i, j, masks):
        k, b = self.n_factors, len(u)
        nnz_a = int(self.adjacency.nnz)
        prop_dense = self.n_layers * nnz_a * k
        prop = int(sum(self._propagation_macs))
        users, items = self._final
        su, si, sj = users[u] != 0, items[i] != 0, items[j] != 0
        score = int((su & si).sum() + (su & sj).sum())
        # the backward pass propagates dense layer gradients (A_hat^T G, no
        # weight gradient) whatever the sparsity of E_0
        return {"fwd_dense": prop_dense + 2 * k * b, "fwd": prop + score,
                "bwd_dense": prop_dense + 4 * k * b,
                "bwd": prop_dense + 2 * score,
                "bwd_full": prop_dense + int(si.sum() + sj.sum() + 2 * su.sum())}

    def inference_macs(self, masks):
        users, items = self.propagate()
        cu = (users != 0).sum(0).double()
        ci = (items != 0).sum(0).double()
        return self.n_users * self.n_items * self.n_factors, int((cu * ci).sum())


class NeuMF(RecModel):
    """NeuMF: a GMF branch ``h · (p_u * q_i)`` plus an MLP over the
    concatenated MLP embeddings, fused by a last linear layer. All four
    embedding tables are masked; the MLP stays dense.

    Parameters
    ----------
    n_users, n_items : int
        Numbers of users and items.
    n_factors : int
        Embedding dimension.
    mlp_layers : tuple of int, default=(64, 32, 16)
        Widths of the MLP layers (its input has ``2 * n_factors``).
    init_std : float, default=0.1
        Standard deviation of the normal initial embeddings.
    generator : torch.Generator or None, default=None
        Random generator of the initialisation.
    dtype : torch.dtype, default=torch.float32
        Parameter type.
    """

    sides = {"gmf_user": "user", "gmf_item": "item", "mlp_user": "user", "mlp_item": "item"}
    dot_product = False

    def __init__(self, n_users, n_items, n_factors, *, mlp_layers=(64, 32, 16), init_std=0.1,
                 generator=None, dtype=torch.float32):
        super().__init__()
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.gmf_user = _normal((n_users, n_factors), init_std, generator, dtype)
        self.gmf_item = _normal((n_items, n_factors), init_std, generator, dtype)
        self.mlp_user = _normal((n_users, n_factors), init_std, generator, dtype)
        self.mlp_item = _normal((n_items, n_factors), init_std, generator, dtype)
        sizes = [2 * n_factors, *mlp_layers]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            lin = nn.Linear(a, b, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(b, a, generator=generator, dtype=dtype) * (2 / a) ** 0.5)
                lin.bias.zero_()
            layers.append(lin)
        self.mlp = nn.ModuleList(layers)
        self.predict = nn.Linear(n_factors + sizes[-1], 1, dtype=dtype)
        with torch.no_grad():
            self.predict.weight.copy_(torch.randn(1, n_factors + sizes[-1], generator=generator,
                                                  dtype=dtype) * 0.1)
            self.predict.bias.zero_()
        self.sizes = sizes

    def _shared_groups(self):
        return [["gmf_user", "gmf_item"], ["mlp_user", "mlp_item"]]

    def _first_layer(self, eu, ei):
        w = self.mlp[0].weight
        k = self.n_factors
        return eu @ w[:, :k].T, ei @ w[:, k:].T

    def _head(self, z, gmf):
        h = torch.relu(z)
        for lin in self.mlp[1:]:
            h = torch.relu(lin(h))
        k = self.n_factors
        wp = self.predict.weight[0]
        return gmf @ wp[:k] + h @ wp[k:] + self.predict.bias[0]

    def pair_scores(self, u, i):
        """Scores of the (user, item) pairs ``(u[b], i[b])``.

        Parameters
        ----------
        u, i : torch.Tensor of int64, shape (b,)
            Users and items.

        Returns
        -------
        torch.Tensor of shape (b,)
        """
        zu, zi = self._first_layer(self.mlp_user[u], self.mlp_item[i])
        z = zu + zi + self.mlp[0].bias
        return self._head(z, self.gmf_user[u] * self.gmf_item[i])

    def loss(self, u, i, j, l2, loss="bpr"):
        pos, neg = self.pair_scores(u, i), self.pair_scores(u, j)
        reg = sum(getattr(self, n)[idx].square().sum()
                  for n, idx in (("gmf_user", u), ("mlp_user", u), ("gmf_item", i),
                                 ("mlp_item", i), ("gmf_item", j), ("mlp_item", j)))
        return _pair_loss(pos, neg, loss) + l2 * reg / (2 * len(u))

    @torch.no_grad()
    def score_users(self, users, item_block=None):
        """Scores of every item for ``users``: (len(users), n_items).

        Parameters
        ----------
        users : torch.Tensor of int64 or sequence of int
            User indices.
        item_block : int or None, optional
            Not used by this model.

        Returns
        -------
        torch.Tensor of shape (len(users), n_items)
        """
        zu, zi = self._first_layer(self.mlp_user[users], self.mlp_item)
        z = zu[:, None, :] + zi[None, :, :] + self.mlp[0].bias
        gmf = self.gmf_user[users][:, None, :] * self.gmf_item[None, :, :]
        return self._head(z, gmf)

    def _pair_macs(self, mu_g, mi_g, mu_m, mi_m):
        k, s = self.n_factors, self.sizes
        deep = sum(a * b for a, b in zip(s[1:-1], s[2:]))
        head = s[-1] + k
        dense = mu_g.shape[0] * (k + 2 * k * s[1] + deep + head)
        inter = int((mu_g & mi_g).sum())
        sparse = inter + int(mu_m.sum() + mi_m.sum()) * s[1] + mu_g.shape[0] * (deep + s[-1]) + inter
        full_inputs = int(mu_g.sum() + mi_g.sum()) + 2 * k * s[1] * mu_g.shape[0]
        return dense, sparse, full_inputs

    def train_macs(self, u, i, j, masks):
        out = {"fwd_dense": 0, "fwd": 0, "bwd_dense": 0, "bwd": 0, "bwd_full": 0}
        for items in (i, j):
            d, s, full = self._pair_macs(masks["gmf_user"][u], masks["gmf_item"][items],
                                         masks["mlp_user"][u], masks["mlp_item"][items])
            out["fwd_dense"] += d
            out["fwd"] += s
            out["bwd_dense"] += 2 * d
            out["bwd"] += 2 * s
            # full embedding gradients: the first layer's input gradient and
            # the GMF product for every dimension
            out["bwd_full"] += 2 * s + full
        return out

    def inference_macs(self, masks):
        k, s = self.n_factors, self.sizes
        nu, ni = self.n_users, self.n_items
        deep = sum(a * b for a, b in zip(s[1:-1], s[2:]))
        pairs = nu * ni
        dense = (nu + ni) * k * s[1] + pairs * (k + deep + s[-1] + k)
        cu = masks["gmf_user"].sum(0).double()
        ci = masks["gmf_item"].sum(0).double()
        gmf = int((cu * ci).sum())
        first = int(masks["mlp_user"].sum() + masks["mlp_item"].sum()) * s[1]
        sparse = first + pairs * (deep + s[-1]) + 2 * gmf
        return dense, sparse

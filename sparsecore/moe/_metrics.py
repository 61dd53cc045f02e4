"""Quality measures of a learned routing."""
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from sparsecore.moe._layer import routing_matrix

__all__ = ["routing_f1"]


def routing_f1(pred_weights, true_weights):
    """Micro F1 of the predicted expert sets against the true ones, after
    matching learned experts to true experts.

    Learned expert labels are arbitrary, so the overlap counts
    ``C = R_pred^T R_true`` (an experts x experts SpGEMM of the two sparse
    routing matrices) are matched by the Hungarian algorithm first.

    Parameters
    ----------
    pred_weights, true_weights : Tensor or ndarray of shape (n_samples, n_experts)
        Routing weights; an expert is selected where its weight is non-zero.

    Returns
    -------
    f1 : float
    matching : ndarray
        ``matching[e]`` = true expert of learned expert ``e``.
    """
    from sparsecore.ops import spgemm

    Rp = routing_matrix(torch.as_tensor(pred_weights))
    Rt = routing_matrix(torch.as_tensor(true_weights))
    Rp.data[:] = 1.0
    Rt.data[:] = 1.0
    overlap = spgemm(Rp.T.tocsr(), Rt).toarray()
    rows, cols = linear_sum_assignment(-overlap)
    matching = np.empty(overlap.shape[0], dtype=np.int64)
    matching[rows] = cols
    hits = overlap[rows, cols].sum()
    return float(2 * hits / (Rp.nnz + Rt.nnz)), matching

"""Recommendation with Dynamic Sparse Learning (needs PyTorch and
scikit-learn: ``pip install "sparsecore[recsys]"``).

:class:`DSLRecommender` trains BPR-MF, LightGCN or NeuMF with sparse
embeddings under a fixed parameter budget and ranks items for every user
through the sparse core; :class:`DSLTrainer` runs the same prune-and-grow
schedule around any torch model and optimizer. After Wang et al., "Dynamic
Sparse Learning: A Novel Paradigm for Efficient Recommendation" (WSDM 2024).
"""
from sparsecore.plugins._builtin import RecsysAdapter

RecsysAdapter("recsys").require()

from sparsecore.recsys._data import (  # noqa: E402
    as_interactions,
    hit_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    train_test_split_per_user,
)
from sparsecore.recsys._estimator import DSLRecommender  # noqa: E402
from sparsecore.recsys._models import BPRMF, LightGCN, NeuMF, RecModel  # noqa: E402
from sparsecore.recsys._trainer import DSLTrainer, cosine_update_ratio  # noqa: E402

__all__ = [
    "BPRMF",
    "DSLRecommender",
    "DSLTrainer",
    "LightGCN",
    "NeuMF",
    "RecModel",
    "as_interactions",
    "cosine_update_ratio",
    "hit_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "train_test_split_per_user",
]

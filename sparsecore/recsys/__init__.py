"""Recommendation with Dynamic Sparse Learning (needs PyTorch:
``pip install "sparsecore[recsys]"``)."""
from sparsecore.plugins._builtin import RecsysAdapter

RecsysAdapter("recsys").require()

from sparsecore.recsys._trainer import DSLTrainer, cosine_update_ratio  # noqa: E402

__all__ = ["DSLTrainer", "cosine_update_ratio"]

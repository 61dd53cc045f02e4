"""Semi-supervised estimators on sparse graphs solved by greedy BCD.

Importing this subpackage imports scikit-learn (``import sparsecore`` does not).
"""
from sparsecore.semi_supervised._label_propagation import GreedyBCDLabelPropagation

__all__ = ["GreedyBCDLabelPropagation"]

"""
Pruning a trained model without retraining
==========================================

:func:`sparsecore.torch.prune` removes weights from the ``nn.Linear`` layers
of a trained model and returns it with compact sparse layers, without any
further training. Which weights go matters: plain magnitude, Wanda (weight
times input norm, Sun et al. 2023) or SparseGPT (which also corrects the kept
weights, Frantar & Alistarh, ICML 2023). Here we train a small MLP on
scikit-learn's handwritten digits (shipped with scikit-learn) and compare the
three at growing sparsity.
"""

# %%
# A trained model
# ---------------
# 64 pixels -> 256 -> 256 -> 10 classes, trained for a few seconds with Adam
# (on one thread: a model this small loses more to thread hand-offs than it
# gains from a second core).
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from sparsecore.torch import prune

torch.manual_seed(0)
torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.3, random_state=0,
                                                    stratify=y)
X_train, X_test = (torch.tensor(a, dtype=torch.float32) for a in (X_train, X_test))
y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                      nn.Linear(256, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(15):
    for batch in torch.randperm(len(X_train)).split(64):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X_train[batch]), y_train[batch]).backward()
        optimizer.step()


def accuracy(m):
    with torch.no_grad():
        return (m(X_test).argmax(1) == y_test).float().mean().item()


print(f"dense test accuracy: {accuracy(model):.3f}")

# %%
# Prune
# -----
# The two hidden layers (modules ``0`` and ``2``) are pruned; the 10-way
# output layer stays dense, as is usual. Wanda and SparseGPT look at the
# layers' inputs on a few calibration batches of training data.
calibration = list(X_train[:512].split(128))
sparsities = [0.5, 0.7, 0.8, 0.9]
results = {}
for method in ("magnitude", "wanda", "sparsegpt"):
    results[method] = [
        accuracy(prune(model, calibration, "unstructured", method, sparsity=s,
                       include=["0", "2"], verbose=0))
        for s in sparsities]
    print(method, " ".join(f"{a:.3f}" for a in results[method]))

# %%
# The pruned model holds compact layers
# (:class:`~sparsecore.torch.CompactNMLinear` for N:M patterns): its
# ``state_dict`` stores only the kept values and their positions.
pruned = prune(model, calibration, "2:4", "sparsegpt", include=["0", "2"], verbose=0)
print(type(pruned[0]).__name__, f"2:4 test accuracy: {accuracy(pruned):.3f}")

# %%
# Accuracy against sparsity
# -------------------------
fig, ax = plt.subplots(figsize=(6, 3.6))
for method, marker in (("magnitude", "o"), ("wanda", "s"), ("sparsegpt", "^")):
    ax.plot(sparsities, results[method], marker=marker, label=method)
ax.plot([0.5], [accuracy(pruned)], "k*", ms=10, label="sparsegpt, 2:4")
ax.axhline(accuracy(model), color="k", ls=":", label="dense")
ax.set(xlabel="share of hidden weights removed", ylabel="test accuracy",
       title="MLP on the digits, pruned without retraining")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The same call prunes pretrained transformers (calibration on real text);
# :doc:`/user_guide/torch` describes the layers, ``torch.compile`` support and
# the checkpoints.

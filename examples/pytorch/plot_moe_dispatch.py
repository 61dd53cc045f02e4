"""
Mixture-of-Experts: sparse dispatch against running every expert
=================================================================

A Mixture-of-Experts layer (Shazeer et al., ICLR 2017) sends each sample to
``k`` of its ``E`` experts, chosen by a gate. Run that way, it costs ``k / E``
of running every expert on every sample. :class:`sparsecore.moe.MixtureOfExperts`
builds the routing as a sparse samples x experts matrix and runs each expert
only on its own samples (``combine="sparse"``); ``combine="dense"`` runs every
expert on the whole batch and is the reference. Here we check that both give
the same output and time them as the number of experts grows.
"""

# %%
# One layer, two ways
# -------------------
# Experts ``Linear(64, 128) - ReLU - Linear(128, 64)``, a top-2 gate, a batch
# of 2048 samples, on one thread.
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from sparsecore.moe import MixtureOfExperts, TopKGate

torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(2048, 64)


def make_layer(n_experts, combine):
    experts = [nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64))
               for _ in range(n_experts)]
    return MixtureOfExperts(experts, TopKGate(64, n_experts, k=2), combine=combine)


def best_time(f, repeat=5):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


counts = [4, 8, 16, 32]
speedup, loads = [], None
with torch.no_grad():
    for n_experts in counts:
        sparse = make_layer(n_experts, "sparse")
        dense = make_layer(n_experts, "dense")
        dense.load_state_dict(sparse.state_dict())        # the same weights
        torch.testing.assert_close(sparse(x)[0], dense(x)[0], rtol=1e-5, atol=1e-5)
        speedup.append(best_time(lambda: dense(x)) / best_time(lambda: sparse(x)))
        print(f"{n_experts:>2} experts: sparse dispatch {speedup[-1]:.1f}x faster "
              f"(FLOP ratio {n_experts // 2}x)")
    # how many samples each of the 32 experts received
    loads = (sparse.last_gate_output.weights > 0).sum(0).numpy()

# %%
# Speed and load
# --------------
# Left: the speedup follows the FLOP ratio ``E / k`` from below (the gate and
# the gather and scatter of each expert's samples cost the rest). Right: an
# untrained gate spreads the samples unevenly; a load-balancing loss
# (``TopKGate(..., load_balance=0.01)``) evens them out in training.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
left.plot(counts, speedup, "o-", label="sparse dispatch")
left.plot(counts, [c / 2 for c in counts], "k:", label="FLOP ratio E / k")
left.set_xscale("log", base=2)
left.set_xticks(counts, [str(c) for c in counts])
left.minorticks_off()
left.set(xlabel="experts E (k = 2)", ylabel="speedup over running every expert",
         title="forward pass, batch 2048, 1 thread")
left.legend(fontsize=8)
right.bar(range(len(loads)), loads, color="C1")
right.axhline(2 * len(x) / len(loads), color="k", ls=":", label="balanced")
right.set(xlabel="expert", ylabel="samples routed", title=f"{len(loads)} experts, top-2 gate")
right.legend(fontsize=8)
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()

# %%
# The DSelect-k and COMET gates, their training and the routing metrics are in
# :doc:`/user_guide/moe`.

"""Greedy block coordinate descent rules against cyclic and random ones, per
block update, on the data sets of Nutini, Laradji & Schmidt (JMLR 2022)
(docs/data/bcd_rules.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load

rules = load("bcd_rules")["result"]["rules"]
panels = [("A (least squares)/gradient", "A: least squares, gradient updates"),
          ("A (least squares)/matrix", "A: least squares, matrix updates"),
          ("C (softmax)/gradient", "C: softmax, gradient updates"),
          ("C (softmax)/matrix", "C: softmax, matrix updates"),
          ("E/forest", "E: label propagation, tree blocks (f - f*)")]
fig, axes = plt.subplots(2, 3, figsize=(11, 6.5))
for ax, (key, title) in zip(axes.flat, panels):
    for label, curve in rules[key].items():
        style = "--" if label.startswith(("Cyclic", "Random", "Red", "Tree p")) else "-"
        ax.plot(np.arange(1, len(curve) + 1), curve, style, label=label)
    ax.set(title=title, yscale="log", xlabel="block updates")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
axes[0, 0].set_ylabel("f(x)")
axes[1, 0].set_ylabel("f(x)")
ax = axes[1, 2]
ft = rules["A_l1"]
for label in ("PG (gradient)", "PN (matrix)", "Newton, working set"):
    gap = np.maximum(np.asarray(ft[label]["rel_gap"]), 1e-16)  # machine precision floor
    ax.plot(np.arange(1, len(gap) + 1), gap, label=label)
ax.set(title=f"A_l1: NNLS + L1, GS-q (support {ft['support_size']})", yscale="log",
       xlabel="block updates", ylabel="relative gap")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=6)
fig.tight_layout()

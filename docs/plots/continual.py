"""SparCL against naive fine-tuning and dense DER++ on Split-digits:
class-incremental accuracy against training FLOPs, one point per method and
seed (docs/data/continual.json)."""
import matplotlib.pyplot as plt
import numpy as np
from _data import load

res = load("continual")["result"]["results"]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
for case, methods in res.items():
    ref = np.mean([r["flops"] for r in methods["derpp"]])
    for i, (method, runs) in enumerate(methods.items()):
        flops = [r["flops"] / ref for r in runs]
        marker = "o" if "nomask" not in method else "x"
        left.scatter(flops, [r["acc"] for r in runs], marker=marker, color=f"C{i}",
                     label=method)
        right.scatter(flops, [r["forgetting"] for r in runs], marker=marker, color=f"C{i}",
                      label=method)
    left.set_title(f"{case}: class-IL accuracy")
    right.set_title(f"{case}: forgetting")
left.set(xlabel="training FLOPs / dense DER++", ylabel="accuracy (%)", xscale="log")
right.set(xlabel="training FLOPs / dense DER++", ylabel="forgetting (points)", xscale="log")
for ax in (left, right):
    ax.grid(True, which="both", alpha=0.3)
left.legend(fontsize=7)
fig.tight_layout()

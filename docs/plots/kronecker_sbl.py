"""Kronecker SBL: NMSE against SNR, drawn at docs build time from the CSV
data that ``python -m sparsecore._bench.sbl --trials 200 --out docs/data``
writes (docs/data/krosbl_*.csv)."""
import csv
import matplotlib.pyplot as plt
from _data import DATA


def read(name):
    with open(DATA / name) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def main():
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    d = read("krosbl_paper3_nmse_vs_snr.csv")
    for key, style in [("svd", "-o"), ("am", "-<"), ("svd (default)", "--o"),
                       ("am (default)", "--<"), ("oracle LS", ":k")]:
        left.plot(d["snr_db"], d[f"{key} mean"], style, label=f"{key} mean")
    left.plot(d["snr_db"], d["svd median"], "-.", color="grey", label="svd median")
    left.set(xlabel="SNR (dB)", ylabel="NMSE (dB)",
             title="3 modes, N = 15^3, M = 8 x 12 x 15, K = 3 (200 trials)")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    d = read("krosbl_irs_nmse_vs_snr.csv")
    for key, style, color in [("svd", "-o", "C0"), ("am", "-<", "C1"), ("pc0.8", "-^", "C2"),
                              ("svd (default)", "--o", "C3")]:
        right.plot(d["snr_db"], d[f"{key} mean"], style, color=color, label=f"ours: {key}")
    for key, color in [("svd", "C0"), ("am", "C1"), ("pc0.8", "C2")]:
        right.plot(d["snr_db"], d[f"paper {key}"], ":", color=color, marker="x",
                   label=f"paper: {key}")
    right.set(xlabel="SNR (dB)", ylabel="channel NMSE (dB)",
              title="IRS-MIMO, complex 288 x 5832 (5 x 50 trials)")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()


main()

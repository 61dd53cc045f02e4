"""sparsecore.torch layers beside torch dense F.linear and torch's CSR and
BSR layouts: a 4096 x 4096 layer at batch 256 (inference) and a BERT-base
feed-forward block at 90 % block sparsity (forward, training step), and MLP
blocks pruned to 2:4 or 50 % unstructured (row bitmask) with their
activation fused (inference). Views of
the registry family ``torch`` (sparsecore/_bench/torch.py)."""
from .common import PeerBenchmark, SpeedupBenchmark, peer_params, shrink_params, safe_import

from sparsecore._bench.torch import FFN_CASES, LAYER_CASES, PRUNED_CASES

with safe_import():
    import torch  # noqa: F401  (the family needs it; absent, every case is skipped)


class LayerInference(PeerBenchmark):
    """y = layer(x), x of shape (256, 4096), float32, no grad."""

    family = "torch"
    params = peer_params("torch", list(LAYER_CASES))

    def setup(self, case, peer, threads):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")
        super().setup(case, peer, threads)

    def time_forward(self, case, peer, threads):
        self.call()


class BertFFN(LayerInference):
    """BERT-base FFN 768 -> 3072 -> 768 (GELU), 128 tokens, 90 % block
    sparsity: ``ffn_forward`` (no grad) and ``ffn_train`` (forward + backward)."""

    params = peer_params("torch", list(FFN_CASES), ["sparsecore", "torch dense"])


class PrunedMLP(LayerInference):
    """BERT-base FFN and a LLaMA-like SwiGLU block pruned to 2:4 by
    ``sparsecore.torch.prune`` (activation fused), at 1 and 512 tokens; the
    SwiGLU block pruned to 50 % unstructured at 1 and 8 tokens."""

    params = peer_params("torch", list(PRUNED_CASES), ["sparsecore", "torch dense"])


class TrackSpeedup(SpeedupBenchmark):
    """time(torch dense) / time(sparsecore); > 1 means the layer is faster."""

    family = "torch"
    base = "torch dense"
    params = [list(LAYER_CASES) + list(FFN_CASES) + list(PRUNED_CASES), [1]]
    timeout = 600

    def setup(self, case, threads):
        if "torch" not in globals():
            raise NotImplementedError("torch is not installed")

    def track_speedup(self, case, threads):
        return self.speedup(case, threads)


shrink_params(globals())

"""sparsecore.torch layers beside torch dense F.linear and torch's CSR and
BSR layouts (issue 7): a 4096 x 4096 layer at batch 256 (inference) and a
BERT-base feed-forward block at 90 % block sparsity (forward, training step)."""
import timeit

from .common import safe_import, shrink_params

with safe_import():
    import torch
    from torch import nn

    from sparsecore.torch import BlockSparseLinear, MonarchLinear, NMSparseLinear, sparsify

LAYERS = ["block16_d0.1", "nm1:4", "nm2:4", "monarch64"]


def _layer(name, size):
    torch.manual_seed(0)
    if name.startswith("block"):
        return BlockSparseLinear(size, size, (16, 16), 0.1)
    if name.startswith("nm"):
        n, m = (int(v) for v in name[2:].split(":"))
        return NMSparseLinear(size, size, n, m)
    return MonarchLinear(size, size, 64)


class LayerInference:
    """y = layer(x), x of shape (256, 4096), float32, no grad."""

    params = [LAYERS, ["sparsecore", "torch dense", "torch csr", "torch bsr"], [1, 2]]
    param_names = ["layer", "library", "threads"]
    timeout = 300

    def setup(self, layer, library, threads):
        if library == "torch bsr" and not layer.startswith("block"):
            raise NotImplementedError("BSR only for block-sparse weights")
        if library == "torch csr" and layer.startswith("monarch"):
            raise NotImplementedError("Monarch weights are dense")
        torch.set_num_threads(threads)
        self.layer = _layer(layer, 4096)
        self.x = torch.randn(256, 4096)
        if library == "sparsecore":
            self.fn = self.layer
        elif library == "torch dense":
            self.fn = self.layer.to_dense()
        else:
            W = self.layer.masked_weight().detach()
            W = W.to_sparse_csr() if library == "torch csr" else W.to_sparse_bsr((16, 16))
            b = self.layer.bias.detach()
            self.fn = lambda x: (W @ x.T).T + b

    def time_forward(self, layer, library, threads):
        with torch.no_grad():
            self.fn(self.x)


def _ffn(sparse):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(768, 3072), nn.GELU(), nn.Linear(3072, 768))
    if sparse:
        sparsify(model, "block", block_shape=(16, 16), density=0.1)
    return model


class BertFFN:
    """BERT-base FFN 768 -> 3072 -> 768 (GELU), 128 tokens, 90 % block sparsity."""

    params = [["sparsecore", "torch dense"], [1, 2]]
    param_names = ["library", "threads"]
    timeout = 300

    def setup(self, library, threads):
        torch.set_num_threads(threads)
        self.model = _ffn(library == "sparsecore")
        self.x = torch.randn(128, 768)

    def time_forward(self, library, threads):
        with torch.no_grad():
            self.model(self.x)

    def time_train_step(self, library, threads):
        self.model.zero_grad(set_to_none=True)
        x = self.x.detach().requires_grad_()
        self.model(x).sum().backward()


def _best(fn, number=3, repeat=5):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


class TrackSpeedup:
    """time(dense) / time(sparsecore) at 1 thread; > 1 means the layer is faster."""

    params = [LAYERS + ["ffn_forward", "ffn_train"]]
    param_names = ["case"]
    unit = "speedup"
    timeout = 600

    def track_speedup_1t(self, case):
        torch.set_num_threads(1)
        if case.startswith("ffn"):
            sparse, dense = _ffn(True), _ffn(False)
            x = torch.randn(128, 768)
            if case == "ffn_forward":
                def run(m):
                    with torch.no_grad():
                        m(x)
            else:
                def run(m):
                    m.zero_grad(set_to_none=True)
                    m(x.detach().requires_grad_()).sum().backward()
        else:
            sparse = _layer(case, 4096)
            dense = sparse.to_dense()
            x = torch.randn(256, 4096)

            def run(m):
                with torch.no_grad():
                    m(x)
        return _best(lambda: run(dense)) / _best(lambda: run(sparse))


shrink_params(globals())

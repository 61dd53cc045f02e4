"""SparCL: sparse continual learning (Wang et al., "SparCL: Sparse Continual
Learning on the Edge", NeurIPS 2022, arXiv:2209.09476) on a DER++ / ER base
(Buzzega et al., "Dark Experience for General Continual Learning", NeurIPS
2020; Chaudhry et al., "On Tiny Episodic Memories in Continual Learning",
2019).

Three switchable parts:

* TDM, task-aware dynamic masking: at the start of every ``mask_update_every``-th
  epoch of a task, each sparse layer keeps the weights of largest
  ``|w| + lambda |g|`` (``g``: the gradient of the last minibatch) down to the
  schedule's lower bound of density, then re-activates zero weights chosen at
  random (with value 0) up to the upper bound.
* DDR, dynamic data removal: the current task's examples with the fewest
  forgetting events (Toneva et al., ICLR 2019; never-learned examples count as
  forgotten at every presentation) are removed in equal parts every
  ``removal_every`` epochs until ``removal_until``, ``data_removal`` of the task
  in all.
* DGM, dynamic gradient masking: every ``grad_mask_every`` steps the weight
  gradient of each layer keeps its ``1 - grad_sparsity`` largest entries (of
  the whole layer); the steps in between compute only those entries.
"""
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sparsecore.continual._buffer import Reservoir
from sparsecore.continual._metrics import AccuracyMatrix
from sparsecore.continual._sparse import FlopCount, LayerState, patch_linear, unpatch_linear
from sparsecore._validation import check_scalar

__all__ = ["CALLBACKS", "DERpp", "SparCL", "naive_finetuning"]

#: Callback names, as Avalanche's ``SupervisedPlugin`` names them. A callback
#: object may define any of them; each is called with the trainer.
CALLBACKS = (
    "before_training_exp",
    "before_training_epoch",
    "before_training_iteration",
    "after_forward",
    "after_backward",
    "after_update",
    "after_training_iteration",
    "after_training_epoch",
    "after_training_exp",
)


def default_mask_schedule(sparsity, epochs_per_task):
    """Return the official TDM schedule, scaled to ``epochs_per_task``.

    With 50 epochs it is ``[(0, s, s-0.01), (5, s+0.01, s), (45, s, s)]``;
    the step 0.01 shrinks to ``min(s, 1 - s) / 2`` near 0 and 1.

    Parameters
    ----------
    sparsity : float in [0, 1)
        Target weight sparsity ``s``.
    epochs_per_task : int
        Epochs of each task.

    Returns
    -------
    list of (epoch, lower, upper)
        From ``epoch`` on, prune to sparsity ``lower`` and regrow to
        ``upper``; ``[(0, 0.0, 0.0)]`` when ``sparsity`` is 0.
    """
    if sparsity == 0:
        return [(0, 0.0, 0.0)]
    step = min(0.01, sparsity / 2, (1 - sparsity) / 2)
    e1 = max(1, epochs_per_task // 10)
    e2 = max(e1 + 1, (9 * epochs_per_task) // 10)
    return [(0, sparsity, sparsity - step), (e1, sparsity + step, sparsity),
            (e2, sparsity, sparsity)]


class SparCL:
    """Sparse continual learning on a rehearsal base (DER++ or ER).

    Parameters
    ----------
    model : torch.nn.Module
        Classifier giving one logit per class; its ``nn.Linear`` layers are
        made weight-sparse (their forward and backward run through
        :func:`sparsecore.ops.spmm` and :func:`sparsecore.ops.sddmm`).
    optimizer : callable or torch.optim.Optimizer, optional
        ``optimizer(params)`` or an optimizer over the model's parameters
        (default: SGD, lr 0.03, no momentum, as the paper).
    rehearsal : {"derpp", "er", None}, default="derpp"
        Replay loss: DER++ (logit distillation ``alpha`` + replayed labels
        ``beta``), ER (replayed labels), or none (plain fine-tuning).
    buffer : Reservoir, optional
        Replay memory (default ``Reservoir(500)``); refused with ``rehearsal=None``.
    alpha, beta : float, default=0.1, 0.5
        DER++ weights of the logit and label terms.
    sparsity : float in [0, 1), default=0.75
        Weight sparsity of every sparse layer (0: dense, TDM off).
    mask_schedule : list of (epoch, lower, upper), optional
        From ``epoch`` (within a task) on, prune to sparsity ``lower`` and
        regrow to ``upper`` (``lower >= upper``). Default: the paper's schedule
        scaled to ``epochs_per_task``.
    mask_update_every : int, optional
        Epochs between TDM updates (default ``max(1, epochs_per_task // 10)``: 5 of 50).
    importance_lambda : float, default=0.5
        ``lambda`` in the importance ``|w| + lambda |g|``.
    data_removal : float in [0, 1), default=0.30
        Fraction of each task removed by DDR (0: off).
    removal_every, removal_until : int, optional
        Epochs between removals and the last removal epoch (default: 0.4 of
        the task's epochs in four removals: 5 and 20 of 50).
    grad_sparsity : float in [0, 1), default=0.80
        Fraction of each layer's gradient entries dropped by DGM (0: off).
    grad_mask_every : int, default=30
        Steps between gradient-mask refreshes.
    task_output_mask : bool, default=True
        Current-task loss over the current task's classes only (logits of the
        other classes set to -inf). Replay losses see every output.
    epochs_per_task : int, default=50
        Epochs of training on each task.
    batch_size : int, default=32
        Size of each minibatch of the current task.
    replay_batch_size : int, optional
        Size of each replay minibatch (default ``batch_size``).
    layers : list of str, optional
        Names of the ``nn.Linear`` layers to sparsify (default: all of them).
    callbacks : sequence
        Objects with any of the methods named in :data:`CALLBACKS`.
    n_threads : int, optional
        Threads of the sparse kernels.
    seed : int, optional
        Seed of shuffling, regrowth, removal ties and the default buffer.

    Attributes
    ----------
    flops_ : FlopCount
        Training FLOPs of the linear layers as they ran.
    accuracy_matrix_ : AccuracyMatrix
        Filled by :meth:`evaluate` (and by :meth:`fit` given a test stream).
    tasks_ : dict
        Task id -> its classes.
    mask_log_, removal_log_ : list of dict
        Every TDM update (per-layer sparsity) and every DDR removal.
    """

    def __init__(self, model, optimizer=None, *, rehearsal="derpp", buffer=None, alpha=0.1,
                 beta=0.5, sparsity=0.75, mask_schedule=None, mask_update_every=None,
                 importance_lambda=0.5, data_removal=0.30, removal_every=None, removal_until=None,
                 grad_sparsity=0.80, grad_mask_every=30, task_output_mask=True,
                 epochs_per_task=50, batch_size=32, replay_batch_size=None, layers=None,
                 callbacks=(), n_threads=None, seed=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if rehearsal not in ("derpp", "er", None):
            raise ValueError(f"rehearsal must be 'derpp', 'er' or None, got {rehearsal!r}")
        if buffer is not None and not isinstance(buffer, Reservoir):
            raise TypeError(f"buffer must be a sparsecore.continual.Reservoir, got "
                            f"{type(buffer).__name__}")
        if rehearsal is None and buffer is not None:
            raise ValueError("rehearsal=None trains without replay; do not pass a buffer")
        self.epochs_per_task = check_scalar(epochs_per_task, "epochs_per_task", int, min_val=1)
        self.batch_size = check_scalar(batch_size, "batch_size", int, min_val=1)
        self.replay_batch_size = (self.batch_size if replay_batch_size is None
                                  else check_scalar(replay_batch_size, "replay_batch_size", int, min_val=1))
        self.sparsity = check_scalar(sparsity, "sparsity", float, min_val=0, max_val=1, include_boundaries="left")
        self.data_removal = check_scalar(data_removal, "data_removal", float, min_val=0, max_val=1, include_boundaries="left")
        self.grad_sparsity = check_scalar(grad_sparsity, "grad_sparsity", float, min_val=0, max_val=1, include_boundaries="left")
        self.alpha = check_scalar(alpha, "alpha", float, min_val=0)
        self.beta = check_scalar(beta, "beta", float, min_val=0)
        self.importance_lambda = check_scalar(importance_lambda, "importance_lambda", float, min_val=0)
        self.grad_mask_every = check_scalar(grad_mask_every, "grad_mask_every", int, min_val=1)
        E = self.epochs_per_task
        self.mask_update_every = (max(1, E // 10) if mask_update_every is None
                                  else check_scalar(mask_update_every, "mask_update_every", int, min_val=1))
        self.mask_schedule = self._check_schedule(
            default_mask_schedule(self.sparsity, E) if mask_schedule is None else mask_schedule)
        until = max(1, round(0.4 * E)) if removal_until is None else check_scalar(
            removal_until, "removal_until", int, min_val=1)
        every = max(1, until // 4) if removal_every is None else check_scalar(
            removal_every, "removal_every", int, min_val=1)
        self.removal_until, self.removal_every = until, every
        self._removal_epochs = [e for e in range(every, until + 1, every) if e < E]
        if self.data_removal > 0 and not self._removal_epochs:
            raise ValueError(
                f"data_removal={self.data_removal} needs a removal epoch below epochs_per_task="
                f"{E} (removal_every={every}, removal_until={until}); lower them or set "
                f"data_removal=0"
            )
        self.task_output_mask = bool(task_output_mask)
        self.rehearsal = rehearsal
        self.n_threads = n_threads
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._torch_gen = torch.Generator().manual_seed(int(self._rng.integers(2**62)))
        callbacks = list(callbacks)
        for cb in callbacks:
            if isinstance(cb, Reservoir) or getattr(cb, "is_replay", False):
                raise ValueError(
                    f"callback {cb!r} is a replay memory; a trainer keeps one replay buffer "
                    f"(pass it as buffer=)"
                )
        self.callbacks = callbacks

        linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        if not linears:
            raise ValueError("model has no torch.nn.Linear layer to train sparsely")
        if layers is None:
            sparse_names = list(linears)
        else:
            sparse_names = list(layers)
            unknown = [n for n in sparse_names if n not in linears]
            if unknown:
                raise ValueError(f"layers {unknown} are not nn.Linear layers of the model; "
                                 f"its linear layers are {list(linears)}")
        self.model = model
        if buffer is None and rehearsal is not None:
            buffer = Reservoir(500, seed=None if seed is None else seed + 1)
        if buffer is not None and buffer.owner is not None and buffer.owner is not self:
            buffer.attach(self)  # raises: the buffer serves another trainer
        if optimizer is None:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
        elif not isinstance(optimizer, torch.optim.Optimizer):
            if not callable(optimizer):
                raise TypeError("optimizer must be a torch.optim.Optimizer or a callable "
                                f"params -> optimizer, got {type(optimizer).__name__}")
            optimizer = optimizer(model.parameters())
        self.optimizer = optimizer

        self.flops_ = FlopCount()
        self._states = {}
        patched = []
        try:
            for name, module in linears.items():
                st = LayerState(name, module, n_threads=n_threads)
                st.counter = self.flops_
                st.managed = name in sparse_names
                patch_linear(st)
                patched.append(st)
                self._states[name] = st
        except BaseException:
            for st in patched:
                unpatch_linear(st)
            raise
        if buffer is not None:
            buffer.attach(self)
        self.buffer = buffer
        self.tasks_ = {}
        self.mask_log_ = []
        self.removal_log_ = []
        self.grad_density_log_ = []
        self._rows_class, self._rows_task, self._row_tasks = [], [], []
        self._n_out = None
        self.clock = 0
        self.n_trained_tasks_ = 0
        self._evaluated_after = -1

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _check_schedule(schedule):
        try:
            rows = [tuple(r) for r in schedule]
        except TypeError:
            raise TypeError("mask_schedule must be a list of (epoch, lower, upper)") from None
        if not rows:
            raise ValueError("mask_schedule is empty")
        out = []
        for r in rows:
            if len(r) != 3:
                raise ValueError(f"mask_schedule rows are (epoch, lower, upper), got {r}")
            e = check_scalar(r[0], "mask_schedule epoch", int, min_val=0)
            lo = check_scalar(r[1], "mask_schedule lower sparsity", float, min_val=0, max_val=1, include_boundaries="left")
            up = check_scalar(r[2], "mask_schedule upper sparsity", float, min_val=0, max_val=1, include_boundaries="left")
            if lo < up:
                raise ValueError(f"mask_schedule row {r}: prune-to sparsity {lo} must be >= "
                                 f"grow-to sparsity {up}")
            out.append((e, lo, up))
        if out[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(out, out[1:])):
            raise ValueError(f"mask_schedule epochs must start at 0 and increase, got "
                             f"{[r[0] for r in out]}")
        return out

    @property
    def tdm(self):
        """Whether task-aware dynamic masking is on (``sparsity > 0``)."""
        return self.sparsity > 0

    @property
    def ddr(self):
        """Whether dynamic data removal is on (``data_removal > 0``)."""
        return self.data_removal > 0

    @property
    def dgm(self):
        """Whether dynamic gradient masking is on (``grad_sparsity > 0``)."""
        return self.grad_sparsity > 0

    def close(self):
        """Give the model's linear layers their own forward back."""
        for st in self._states.values():
            unpatch_linear(st)
        if self.buffer is not None and self.buffer.owner is self:
            self.buffer.owner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def masks_(self):
        """Layer name -> boolean weight mask (sparse layers only)."""
        return {n: st.mask.copy() for n, st in self._states.items() if st.mask is not None}

    def sparsity_report(self):
        """Layer name -> fraction of zero weights in the mask.

        Returns
        -------
        dict
            One entry per layer that has a mask.
        """
        return {n: 1.0 - st.mask.mean() for n, st in self._states.items() if st.mask is not None}

    def _call(self, event):
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self)

    # ------------------------------------------------------------------- data
    def _param_dtype(self):
        for p in self.model.parameters():
            return p.dtype
        return torch.float32

    def _as_tensors(self, X, y, where):
        Xt = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        if Xt.ndim < 1 or yt.ndim != 1 or Xt.shape[0] != yt.shape[0]:
            raise ValueError(f"{where}: X and y must have the same number of rows, got X "
                             f"{tuple(Xt.shape)} and y {tuple(yt.shape)}")
        if Xt.shape[0] == 0:
            raise ValueError(f"{where} is empty (0 examples)")
        if yt.dtype.is_floating_point or yt.dtype == torch.bool or yt.is_complex():
            if not torch.equal(yt, yt.round()):
                raise TypeError(f"{where}: y must hold integer class labels, got {yt.dtype}")
        yt = yt.to(torch.int64)
        if int(yt.min()) < 0:
            raise ValueError(f"{where}: class labels must be >= 0, got {int(yt.min())}")
        return Xt.to(self._param_dtype()), yt

    def _split_task(self, task, where):
        if isinstance(task, dict):
            return task["X"], task["y"], task.get("classes")
        task = tuple(task)
        if len(task) == 2:
            return task[0], task[1], None
        if len(task) == 3:
            return task
        raise ValueError(f"{where} must be (X, y) or (X, y, classes), got {len(task)} items")

    def _register_task(self, task_id, yt, classes):
        seen = np.unique(yt.numpy())
        if classes is None:
            classes = seen
        classes = np.unique(np.asarray(classes, dtype=np.int64))
        if not np.isin(seen, classes).all():
            raise ValueError(f"task {task_id!r}: labels {np.setdiff1d(seen, classes).tolist()} "
                             f"are not in its classes {classes.tolist()}")
        for other, cls in self.tasks_.items():
            if other == task_id:
                if not np.array_equal(cls, classes):
                    raise ValueError(f"task {task_id!r} was trained with classes {cls.tolist()}"
                                     f", now {classes.tolist()}")
                continue
            common = np.intersect1d(cls, classes)
            if common.size:
                raise ValueError(
                    f"task {task_id!r} has classes {common.tolist()} that task {other!r} "
                    f"already has; class-incremental tasks must not share classes"
                )
        return classes

    # ------------------------------------------------------------------- TDM
    def _schedule_row(self, epoch):
        row = self.mask_schedule[0]
        for r in self.mask_schedule:
            if r[0] <= epoch:
                row = r
        return row

    @torch.no_grad()
    def _tdm_update(self, epoch):
        _, lo, up = self._schedule_row(epoch)
        record = {"task": self.experience, "epoch": epoch, "lower": lo, "upper": up,
                  "sparsity": {}, "zeros": {}}
        for name, st in self._states.items():
            if not st.managed:
                continue
            w = st.module.weight
            numel = w.numel()
            imp = w.detach().abs().reshape(-1).double()
            if w.grad is not None and self.importance_lambda:
                imp = imp + self.importance_lambda * w.grad.detach().abs().reshape(-1).double()
            n_keep = numel - int(round(lo * numel))
            n_final = numel - int(round(up * numel))
            order = np.argsort(-imp.cpu().numpy(), kind="stable")
            mask = np.zeros(numel, dtype=bool)
            mask[order[:n_keep]] = True
            zeros = np.flatnonzero(~mask)
            grow = n_final - n_keep
            if grow > 0:
                mask[self._rng.choice(zeros, size=grow, replace=False)] = True
            mask = mask.reshape(w.shape)
            keep_new = torch.from_numpy(mask).to(w.device)
            was = (torch.from_numpy(st.mask).to(w.device) if st.mask is not None
                   else torch.ones_like(keep_new))
            # pruned weights are zeroed; regrown ones start at 0
            w.mul_((keep_new & was).to(w.dtype))
            old_grad_mask = st.grad_mask
            st.set_mask(mask)
            if old_grad_mask is not None:
                # DGM's mask outlives the weight update, restricted to the new mask
                st.set_grad_mask(old_grad_mask & mask)
            st.mask_t = keep_new.to(w.dtype)
            self._mask_optimizer_state(w, st.mask_t)
            zeros = int(numel - np.count_nonzero(mask))
            record["zeros"][name] = zeros
            record["sparsity"][name] = zeros / numel
        self.mask_log_.append(record)

    def _mask_optimizer_state(self, param, mask):
        state = self.optimizer.state.get(param)
        if not state:
            return
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.mul_(mask)

    @torch.no_grad()
    def _apply_weight_masks(self):
        for st in self._states.values():
            if st.mask is not None:
                st.module.weight.mul_(st.mask_t)

    # ------------------------------------------------------------------- DGM
    @torch.no_grad()
    def _dgm_after_backward(self, refresh):
        densities = {}
        for name, st in self._states.items():
            if not st.managed:
                continue
            g = st.module.weight.grad
            if g is None:
                continue
            if st.mask is not None:
                g.mul_(st.mask_t)
            if not self.dgm:
                continue
            numel = g.numel()
            k = numel - int(math.ceil(self.grad_sparsity * numel))
            if refresh:
                mag = g.abs().reshape(-1)
                nz = int(torch.count_nonzero(mag))
                keep = np.zeros(numel, dtype=bool)
                if k > 0 and nz:
                    idx = torch.topk(mag, min(k, nz), sorted=False).indices.cpu().numpy()
                    keep[idx] = True
                keep = keep.reshape(g.shape)
                st.set_grad_mask(keep)
                st.grad_mask_t = torch.from_numpy(st.grad_mask).to(g.device, g.dtype)
            if st.grad_mask is not None:
                g.mul_(st.grad_mask_t)
            densities[name] = float(torch.count_nonzero(g)) / numel
        if densities:
            self.grad_density_log_.append(max(densities.values()))

    def _dgm_before_step(self, refresh):
        if refresh:
            for st in self._states.values():
                if st.managed:
                    st.set_grad_mask(None)

    # ------------------------------------------------------------------- DDR
    def _ddr_remove(self, epoch, part):
        stats = self._ddr
        active = np.flatnonzero(stats["active"])
        score = np.where(stats["learned"], stats["forgets"], stats["presentations"])[active]
        # random order first, then a stable sort: ties are broken at random
        perm = self._rng.permutation(active.size)
        order = perm[np.argsort(score[perm], kind="stable")]
        gone = active[order[:part]]
        stats["active"][gone] = False
        kept_scores = score[order[part:]]
        self.removal_log_.append({
            "task": self.experience, "epoch": epoch, "removed": gone.copy(),
            "removed_max_score": int(score[order[:part]].max()) if part else None,
            "kept_min_score": int(kept_scores.min()) if kept_scores.size else None,
        })
        self.flops_.removed += int(gone.size)
        for key in ("forgets", "presentations"):
            stats[key][:] = 0
        stats["learned"][:] = False
        stats["prev"][:] = False

    def _ddr_record(self, ids, correct):
        s = self._ddr
        s["forgets"][ids] += (s["prev"][ids] & ~correct)
        s["presentations"][ids] += 1
        s["learned"][ids] |= correct
        s["prev"][ids] = correct

    # --------------------------------------------------------------- training
    def fit(self, stream, test_stream=None):
        """Train on every task of ``stream`` in order.

        Parameters
        ----------
        stream : iterable of (X, y) or (X, y, classes)
            One entry per task; ``classes`` defaults to the labels in ``y``.
        test_stream : sequence of (X, y[, classes]), optional
            Evaluated after each task to fill :attr:`accuracy_matrix_`.

        Returns
        -------
        self : SparCL
            The trained trainer.
        """
        tasks = [self._split_task(t, f"stream[{i}]") for i, t in enumerate(stream)]
        if not tasks:
            raise ValueError("stream has no task")
        checked, all_classes = [], []
        for i, (X, y, classes) in enumerate(tasks):
            Xt, yt = self._as_tensors(X, y, f"task {i}")
            cls = np.unique(yt.numpy()) if classes is None else np.unique(np.asarray(classes))
            for j, other in enumerate(all_classes):
                common = np.intersect1d(cls, other)
                if common.size:
                    raise ValueError(f"tasks {j} and {i} share classes {common.tolist()}; "
                                     f"class-incremental tasks must not share classes")
            all_classes.append(cls)
            checked.append((Xt, yt, classes))
        if test_stream is not None:
            test_stream = list(test_stream)
        for i, (Xt, yt, classes) in enumerate(checked):
            self.partial_fit(Xt, yt, task_id=i, classes=classes)
            if test_stream is not None:
                self.evaluate(test_stream)
        return self

    def partial_fit(self, X, y, task_id=None, *, classes=None, epochs=None):
        """Train ``epochs`` (default ``epochs_per_task``) epochs on one task.

        Parameters
        ----------
        X : array_like or Tensor, shape (n, ...)
            Examples of the task.
        y : array_like of int, shape (n,)
            Their labels.
        task_id : hashable, optional
            Default: the next task index.
        classes : array_like of int, optional
            The task's classes (default: the labels in ``y``).
        epochs : int, optional
            Epochs to train (default ``epochs_per_task``).

        Returns
        -------
        self : SparCL
            The trained trainer.
        """
        if task_id is None:
            task_id = len(self.tasks_)
        epochs = self.epochs_per_task if epochs is None else check_scalar(epochs, "epochs", int, min_val=1)
        if self.ddr and epochs != self.epochs_per_task:
            if not [e for e in self._removal_epochs if e < epochs]:
                raise ValueError(f"epochs={epochs} leaves no removal epoch for data_removal")
        Xt, yt = self._as_tensors(X, y, f"task {task_id!r}")
        classes = self._register_task(task_id, yt, classes)
        self._check_outputs(Xt[:1], classes)
        self.tasks_[task_id] = classes
        self.experience = task_id
        self.task_classes = classes
        n = Xt.shape[0]
        cur = torch.zeros(self._n_out, dtype=torch.bool)
        cur[torch.from_numpy(classes)] = True
        self._cur_mask = cur
        self._ddr = {"active": np.ones(n, bool), "forgets": np.zeros(n, np.int64),
                     "presentations": np.zeros(n, np.int64), "learned": np.zeros(n, bool),
                     "prev": np.zeros(n, bool)}
        total_removed = int(round(self.data_removal * n)) if self.ddr else 0
        removal_epochs = [e for e in self._removal_epochs if e < epochs]
        parts = ([len(p) for p in np.array_split(np.arange(total_removed), len(removal_epochs))]
                 if total_removed else [])
        self.model.train()
        self._call("before_training_exp")
        for epoch in range(epochs):
            self.epoch = epoch
            if total_removed and epoch in removal_epochs:
                self._ddr_remove(epoch, parts[removal_epochs.index(epoch)])
            if self.tdm and epoch % self.mask_update_every == 0:
                self._tdm_update(epoch)
            self._call("before_training_epoch")
            active = np.flatnonzero(self._ddr["active"])
            order = active[self._rng.permutation(active.size)]
            for start in range(0, order.size, self.batch_size):
                ids = order[start:start + self.batch_size]
                self._step(Xt[torch.from_numpy(ids)], yt[torch.from_numpy(ids)], ids, task_id)
            self._call("after_training_epoch")
        self._call("after_training_exp")
        self.n_trained_tasks_ += 1
        return self

    def _check_outputs(self, x1, classes):
        if self._n_out is None:
            with torch.no_grad():
                was = self.model.training
                self.model.eval()
                out = self.model(x1)
                self.model.train(was)
            if out.ndim != 2:
                raise ValueError(f"model must return (batch, n_classes) logits, got shape "
                                 f"{tuple(out.shape)}")
            self._n_out = out.shape[1]
        if classes.size and int(classes.max()) >= self._n_out:
            raise ValueError(f"class {int(classes.max())} has no output: the model gives "
                             f"{self._n_out} logits")

    def _step(self, xb, yb, ids, task_id):
        self.mb_x, self.mb_y = xb, yb
        self._call("before_training_iteration")
        refresh = self.dgm and self.clock % self.grad_mask_every == 0
        self._dgm_before_step(refresh)
        self.optimizer.zero_grad(set_to_none=False)
        out = self.model(xb)
        self.mb_output = out
        self.flops_.samples += xb.shape[0]
        logits = out.masked_fill(~self._cur_mask, float("-inf")) if self.task_output_mask else out
        if self.ddr:
            with torch.no_grad():
                self._ddr_record(ids, (logits.argmax(1) == yb).numpy())
        self._call("after_forward")
        if self.rehearsal == "er" and self.buffer is not None and len(self.buffer):
            bx, by, _, _ = self.buffer.sample(self.replay_batch_size)
            bout = self.model(bx)
            self.flops_.samples += bx.shape[0]
            loss = F.cross_entropy(torch.cat([logits, bout]), torch.cat([yb, by]))
        else:
            loss = F.cross_entropy(logits, yb)
            if self.rehearsal == "derpp" and self.buffer is not None and len(self.buffer):
                bx, _, bz, _ = self.buffer.sample(self.replay_batch_size)
                loss = loss + self.alpha * F.mse_loss(self.model(bx), bz)
                bx2, by2, _, _ = self.buffer.sample(self.replay_batch_size)
                loss = loss + self.beta * F.cross_entropy(self.model(bx2), by2)
                self.flops_.samples += bx.shape[0] + bx2.shape[0]
        self.loss = loss
        loss.backward()
        self._dgm_after_backward(refresh)
        self._call("after_backward")
        self.optimizer.step()
        self._apply_weight_masks()
        self._call("after_update")
        if self.buffer is not None:
            self.buffer.add(xb, yb, logits=out.detach() if self.rehearsal == "derpp" else None,
                            task=task_id if isinstance(task_id, numbers.Integral) else None)
        self.clock += 1
        self._call("after_training_iteration")

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def decision_function(self, X, batch_size=1024):
        """Logits of the model for X (evaluation mode).

        Parameters
        ----------
        X : array_like or Tensor, shape (n, ...)
            Examples.
        batch_size : int, default=1024
            Examples per forward pass.

        Returns
        -------
        torch.Tensor, shape (n, n_outputs)
            One row of logits per example.
        """
        Xt = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        Xt = Xt.to(self._param_dtype())
        was = self.model.training
        self.model.eval()
        try:
            outs = [self.model(Xt[i:i + batch_size]) for i in range(0, Xt.shape[0], batch_size)]
        finally:
            self.model.train(was)
        return torch.cat(outs) if outs else torch.empty(0, self._n_out or 0)

    def predict(self, X):
        """Class-incremental prediction: arg-max over every output.

        Parameters
        ----------
        X : array_like or Tensor, shape (n, ...)
            Examples.

        Returns
        -------
        ndarray of int64, shape (n,)
            Predicted classes.
        """
        return self.decision_function(X).argmax(1).numpy()

    def evaluate(self, test_stream):
        """Evaluate the accuracy on every test task now.

        The accuracies are recorded as the row of the tasks trained so far in
        :attr:`accuracy_matrix_`, which is returned.

        Parameters
        ----------
        test_stream : sequence of (X, y) or (X, y, classes)
            In the order of the training tasks; the classes of task j default
            to those it was trained with (else the labels in y).

        Returns
        -------
        AccuracyMatrix
            The updated :attr:`accuracy_matrix_`.
        """
        test_stream = list(test_stream)
        if not test_stream:
            raise ValueError("test_stream has no task")
        ids = list(self.tasks_)
        row_c, row_t = [], []
        for j, t in enumerate(test_stream):
            X, y, classes = self._split_task(t, f"test_stream[{j}]")
            Xt, yt = self._as_tensors(X, y, f"test task {j}")
            if classes is None:
                classes = self.tasks_[ids[j]] if j < len(ids) else np.unique(yt.numpy())
            classes = torch.as_tensor(np.asarray(classes, dtype=np.int64))
            out = self.decision_function(Xt)
            if self._n_out is None:
                self._n_out = out.shape[1]
            row_c.append(100.0 * float((out.argmax(1) == yt).double().mean()))
            sub = out[:, classes]
            row_t.append(100.0 * float((classes[sub.argmax(1)] == yt).double().mean()))
        row = max(self.n_trained_tasks_ - 1, 0)
        if self._rows_class and self._row_tasks[-1] == row:
            self._rows_class[-1], self._rows_task[-1] = row_c, row_t
        else:
            self._rows_class.append(row_c)
            self._rows_task.append(row_t)
            self._row_tasks.append(row)
        width = max(len(r) for r in self._rows_class)
        pad = lambda rows: [r + [np.nan] * (width - len(r)) for r in rows]  # noqa: E731
        self.accuracy_matrix_ = AccuracyMatrix(pad(self._rows_class), pad(self._rows_task))
        return self.accuracy_matrix_

    def score(self, X, y):
        """Class-incremental accuracy (fraction) on X, y.

        Parameters
        ----------
        X : array_like or Tensor, shape (n, ...)
            Examples.
        y : array_like of int, shape (n,)
            Their labels.

        Returns
        -------
        float
            Fraction of examples whose arg-max output is their label.
        """
        y = np.asarray(y)
        return float((self.predict(X) == y).mean())

    def __repr__(self):
        parts = [f"rehearsal={self.rehearsal!r}", f"sparsity={self.sparsity}",
                 f"data_removal={self.data_removal}", f"grad_sparsity={self.grad_sparsity}",
                 f"task_output_mask={self.task_output_mask}"]
        return f"SparCL({', '.join(parts)})"


def DERpp(model, optimizer=None, **kwargs):
    """Dense DER++ (Buzzega et al., NeurIPS 2020): :class:`SparCL` with TDM, DDR and DGM off.

    The task-aware output mask stays on unless ``task_output_mask=False``.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier giving one logit per class (see :class:`SparCL`).
    optimizer : callable or torch.optim.Optimizer, optional
        As in :class:`SparCL` (default: SGD, lr 0.03).
    **kwargs
        Other keywords of :class:`SparCL`; ``sparsity``, ``data_removal`` and
        ``grad_sparsity`` default to 0 and ``rehearsal`` to ``"derpp"``.

    Returns
    -------
    SparCL
        The dense trainer.
    """
    for key in ("sparsity", "data_removal", "grad_sparsity"):
        kwargs.setdefault(key, 0.0)
    kwargs.setdefault("rehearsal", "derpp")
    return SparCL(model, optimizer, **kwargs)


def naive_finetuning(model, optimizer=None, **kwargs):
    """Fine-tuning on each task in turn: no replay, dense, no removal.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier giving one logit per class (see :class:`SparCL`).
    optimizer : callable or torch.optim.Optimizer, optional
        As in :class:`SparCL` (default: SGD, lr 0.03).
    **kwargs
        Other keywords of :class:`SparCL`; ``sparsity``, ``data_removal`` and
        ``grad_sparsity`` default to 0, and ``rehearsal`` is always None (so
        ``buffer`` must not be given).

    Returns
    -------
    SparCL
        The dense trainer without replay.
    """
    for key in ("sparsity", "data_removal", "grad_sparsity"):
        kwargs.setdefault(key, 0.0)
    kwargs["rehearsal"] = None
    return SparCL(model, optimizer, **kwargs)

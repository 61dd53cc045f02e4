"""SparCL's sparse parts (TDM and DGM) as callbacks on somebody else's
training loop: the logic of :class:`sparsecore.continual.avalanche.SparCLPlugin`,
kept free of any Avalanche import.

The strategy passed to each callback needs what Avalanche's
``SupervisedTemplate`` has: ``model``, ``optimizer`` and ``clock`` (with
``train_exp_epochs``, the epoch within the current experience). Rehearsal
stays with the strategy (Avalanche's ``DER`` strategy, or a ``ReplayPlugin``).
"""
from sparsecore.continual._trainer import SparCL

__all__ = ["SparCLCallbacks"]


class SparCLCallbacks:
    """TDM + DGM on a strategy's model, with the FLOP count in ``flops_``.

    Parameters
    ----------
    sparsity, mask_schedule, mask_update_every, importance_lambda,
    grad_sparsity, grad_mask_every, epochs_per_task, layers, n_threads, seed
        As for :class:`~sparsecore.continual.SparCL`; ``epochs_per_task``
        defaults to the strategy's ``train_epochs`` at the first experience.

    Notes
    -----
    Dynamic data removal needs stable per-example ids through the strategy's
    data loader, which Avalanche does not provide: it is available in
    :class:`~sparsecore.continual.SparCL` only.
    """

    is_replay = False

    def __init__(self, sparsity=0.75, *, mask_schedule=None, mask_update_every=None,
                 importance_lambda=0.5, grad_sparsity=0.80, grad_mask_every=30,
                 epochs_per_task=None, layers=None, n_threads=None, seed=None):
        self.params = dict(sparsity=sparsity, mask_schedule=mask_schedule,
                           mask_update_every=mask_update_every,
                           importance_lambda=importance_lambda, grad_sparsity=grad_sparsity,
                           grad_mask_every=grad_mask_every, layers=layers,
                           n_threads=n_threads, seed=seed)
        self.epochs_per_task = epochs_per_task
        # validate now, on a throw-away model, so bad values fail at construction
        import torch

        probe = SparCL(torch.nn.Linear(1, 1), torch.optim.SGD([torch.zeros(1)], lr=0.1),
                       rehearsal=None, data_removal=0.0, task_output_mask=False,
                       epochs_per_task=epochs_per_task or 50,
                       **{**self.params, "layers": None})
        probe.close()
        self.engine = None
        self._refresh = False

    @property
    def flops_(self):
        return None if self.engine is None else self.engine.flops_

    def _engine_for(self, strategy):
        if self.engine is None:
            for other in getattr(strategy, "plugins", ()):
                if other is not self and isinstance(other, SparCLCallbacks):
                    raise ValueError("a strategy takes one SparCL plugin")
            epochs = self.epochs_per_task or int(getattr(strategy, "train_epochs", 50))
            self.engine = SparCL(strategy.model, strategy.optimizer, rehearsal=None,
                                 data_removal=0.0, task_output_mask=False,
                                 epochs_per_task=epochs, **self.params)
        elif self.engine.model is not strategy.model:
            raise ValueError("this SparCL plugin already drives another model")
        self.engine.optimizer = strategy.optimizer
        return self.engine

    def before_training_exp(self, strategy, **kwargs):
        engine = self._engine_for(strategy)
        exp = getattr(strategy, "experience", None)
        engine.experience = getattr(exp, "current_experience", exp)

    def before_training_epoch(self, strategy, **kwargs):
        engine = self._engine_for(strategy)
        epoch = int(strategy.clock.train_exp_epochs)
        engine.epoch = epoch
        if engine.tdm and epoch % engine.mask_update_every == 0:
            engine._tdm_update(epoch)

    def before_forward(self, strategy, **kwargs):
        engine = self._engine_for(strategy)
        self._refresh = engine.dgm and engine.clock % engine.grad_mask_every == 0
        engine._dgm_before_step(self._refresh)

    def after_backward(self, strategy, **kwargs):
        self.engine._dgm_after_backward(self._refresh)

    def after_update(self, strategy, **kwargs):
        self.engine._apply_weight_masks()
        self.engine.clock += 1

    def close(self):
        """Give the model's linear layers their own forward back."""
        if self.engine is not None:
            self.engine.close()

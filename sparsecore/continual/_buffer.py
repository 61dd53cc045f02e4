"""Reservoir replay buffer (Vitter, ACM TOMS 1985; as used by ER and DER++)."""
import numpy as np
import torch

__all__ = ["Reservoir"]


class Reservoir:
    """A fixed-size replay memory filled by reservoir sampling.

    Every example seen so far is in the buffer with the same probability
    ``capacity / seen``. Each slot keeps the input, its label, its task and
    (for DER++) the logits the model gave it when it was inserted.

    Parameters
    ----------
    capacity : int
        Number of examples kept (> 0).
    seed : int or None, default=None
        Seed of the insertion and sampling generator.

    Notes
    -----
    A buffer serves one trainer: attaching it to a second one raises, so a
    model is never trained with two replay memories at once.
    """

    def __init__(self, capacity=500, *, seed=None):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
            raise TypeError(f"capacity must be an int, got {type(capacity).__name__}")
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.owner = None
        self.clear()

    def clear(self):
        """Forget every example (the owner stays attached)."""
        self.seen = 0
        self.x = self.y = self.logits = self.task = None
        self.size = 0

    def attach(self, owner):
        """Bind the buffer to one trainer; a second one is refused.

        Parameters
        ----------
        owner : object
            The trainer that replays from this buffer.
        """
        if self.owner is not None and self.owner is not owner:
            raise ValueError(
                "this Reservoir already serves another trainer; a trainer keeps one replay "
                "buffer, so give each trainer its own Reservoir"
            )
        self.owner = owner

    def __len__(self):
        return self.size

    def add(self, x, y, logits=None, task=None):
        """Offer a batch; each example enters by reservoir sampling.

        Parameters
        ----------
        x : torch.Tensor, shape (n, ...)
            Inputs of the batch.
        y : torch.Tensor, shape (n,)
            Their labels.
        logits : torch.Tensor, shape (n, n_outputs), optional
            The model's logits for ``x`` (DER++); kept only if the first batch
            offered had logits.
        task : int, optional
            Task of the batch (stored as -1 when None).
        """
        x = x.detach()
        y = y.detach()
        n = x.shape[0]
        if n == 0:
            return
        if self.x is None:
            self.x = torch.empty((self.capacity, *x.shape[1:]), dtype=x.dtype)
            self.y = torch.empty(self.capacity, dtype=y.dtype)
            self.task = torch.empty(self.capacity, dtype=torch.int64)
            if logits is not None:
                self.logits = torch.empty((self.capacity, logits.shape[1]), dtype=logits.dtype)
        for i in range(n):
            if self.seen < self.capacity:
                slot = self.seen
            else:
                slot = int(self._rng.integers(0, self.seen + 1))
                if slot >= self.capacity:
                    slot = -1
            self.seen += 1
            if slot < 0:
                continue
            self.x[slot] = x[i]
            self.y[slot] = y[i]
            self.task[slot] = -1 if task is None else int(task)
            if logits is not None and self.logits is not None:
                self.logits[slot] = logits[i].detach()
            self.size = min(self.seen, self.capacity)

    def sample(self, batch_size):
        """Draw up to ``batch_size`` distinct stored examples.

        Parameters
        ----------
        batch_size : int
            Number of examples wanted (fewer if the buffer holds fewer).

        Returns
        -------
        x, y, logits, task : torch.Tensor
            The examples' inputs, labels, stored logits (None when no logits
            are kept) and tasks (-1 where unknown).
        """
        if self.size == 0:
            raise ValueError("the buffer is empty")
        k = min(int(batch_size), self.size)
        idx = torch.from_numpy(self._rng.choice(self.size, size=k, replace=False))
        logits = self.logits[idx] if self.logits is not None else None
        return self.x[idx], self.y[idx], logits, self.task[idx]

    def __repr__(self):
        return f"Reservoir(capacity={self.capacity}, size={self.size}, seen={self.seen})"

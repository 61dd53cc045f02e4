"""Continual-learning metrics: the accuracy matrix and what is read off it."""
import numpy as np

__all__ = ["AccuracyMatrix"]


class AccuracyMatrix:
    """Accuracies ``R[i, j]`` on task ``j`` after training task ``i`` (in %).

    Entries for tasks not evaluated are NaN. Class-incremental accuracy
    (``class_il``) takes the arg-max over every output; task-incremental
    (``task_il``) over the classes of the example's task only.

    Attributes
    ----------
    class_il, task_il : ndarray of shape (n_trained, n_tasks)
    """

    def __init__(self, class_il, task_il):
        self.class_il = np.asarray(class_il, dtype=np.float64)
        self.task_il = np.asarray(task_il, dtype=np.float64)

    def _m(self, setting):
        if setting not in ("class", "task"):
            raise ValueError(f"setting must be 'class' or 'task', got {setting!r}")
        return self.class_il if setting == "class" else self.task_il

    def average_accuracy(self, setting="class"):
        """Mean accuracy over the tasks trained so far, after the last one.

        Parameters
        ----------
        setting : {"class", "task"}, default="class"
            Class-incremental or task-incremental accuracies.

        Returns
        -------
        float
            In %; NaN when no row has been recorded.
        """
        R = self._m(setting)
        if R.shape[0] == 0:
            return float("nan")
        t = R.shape[0]
        return float(np.nanmean(R[-1, :t]))

    def forgetting(self, setting="class"):
        """Mean over earlier tasks of (best earlier accuracy - final accuracy).

        Forgetting as defined by Chaudhry et al. (ECCV 2018).

        Parameters
        ----------
        setting : {"class", "task"}, default="class"
            Class-incremental or task-incremental accuracies.

        Returns
        -------
        float
            In percentage points; NaN with fewer than two trained tasks.
        """
        R = self._m(setting)
        t = R.shape[0]
        if t < 2:
            return float("nan")
        best = np.nanmax(R[:-1, : t - 1], axis=0)
        return float(np.nanmean(best - R[-1, : t - 1]))

    def learning_accuracy(self, setting="class"):
        """Mean accuracy on each task right after training it.

        Parameters
        ----------
        setting : {"class", "task"}, default="class"
            Class-incremental or task-incremental accuracies.

        Returns
        -------
        float
            In %; NaN when no row has been recorded.
        """
        R = self._m(setting)
        t = R.shape[0]
        return float(np.nanmean(np.diag(R[:t, :t]))) if t else float("nan")

    @property
    def average(self):
        """Class-incremental average accuracy (``average_accuracy("class")``)."""
        return self.average_accuracy("class")

    @property
    def forgetting_(self):
        """Class-incremental forgetting (``forgetting("class")``)."""
        return self.forgetting("class")

    def __repr__(self):
        rows = "\n".join("  " + " ".join(f"{v:6.1f}" for v in r) for r in self.class_il)
        return (f"AccuracyMatrix(class-IL, rows = after task i)\n{rows}\n"
                f"  average {self.average_accuracy():.2f}, forgetting {self.forgetting():.2f}")

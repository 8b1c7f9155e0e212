"""The training loop of D2L section 14.12, with the book's names, and the monitor beside it.

:func:`train` is the book's loop over the image ``X``, the only parameter: features, loss,
backward, optimiser step, scheduler step. What the book's loop does not do itself (keeping a
history, a progress bar, stopping on a non-finite loss, at a target loss or when a callback asks)
is one call per step to a :class:`Monitor`.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional

import torch

from .objective import Objective
from .presets import Preset

# How a Monitor's reason begins when the loss became non-finite (nan or inf).
NON_FINITE = "loss became non-finite"


def non_finite(reason: Optional[str]) -> bool:
    """Whether a run or a stage stopped because its loss became non-finite."""
    return reason is not None and reason.startswith(NON_FINITE)


def make_trainer(X: torch.Tensor, settings: Preset):
    """``(trainer, scheduler)`` for the image ``X``: Adam or L-BFGS, and the book's StepLR or None."""
    if settings.optimizer == "adam":
        trainer = torch.optim.Adam([X], lr=settings.lr)
    else:
        # One iteration per step() and no line search, so that every step is one loss
        # evaluation, like Adam's, recorded at the image before that step's update.
        trainer = torch.optim.LBFGS([X], lr=settings.lr, max_iter=1, history_size=100)
    scheduler = None
    if settings.lr_decay_step:
        scheduler = torch.optim.lr_scheduler.StepLR(trainer, settings.lr_decay_step,
                                                    settings.lr_decay)
    return trainer, scheduler


def train(X: torch.Tensor, objective: Objective, trainer, scheduler, num_epochs: int,
          monitor: Callable) -> Optional[str]:
    """The book's loop: ``num_epochs`` steps on the image ``X`` (modified in place).

    ``monitor(X, contents_l, styles_l, tv_l, l)`` sees every step's loss terms before the update
    and returns why to stop, or None. Returns that reason, or None after ``num_epochs`` steps.
    """
    for epoch in range(num_epochs):
        trainer.zero_grad()
        contents_Y_hat, styles_Y_hat = objective.extract_features(X)
        contents_l, styles_l, tv_l, l = objective.compute_loss(X, contents_Y_hat, styles_Y_hat)
        l.backward()
        stop = monitor(X, contents_l, styles_l, tv_l, l)
        if stop is not None:
            return stop
        trainer.step(lambda: l)  # L-BFGS asks for the loss again: this step's (Adam ignores it)
        if scheduler is not None:
            scheduler.step()
    return None


class Monitor:
    """Everything a run does at each step besides optimising; one instance across all stages.

    ``history``: one record per step (see :class:`d2lstyle.Result`). ``keep``: which image to
    fall back on, ``"last"`` finite one (the book's loop) or ``"best"`` (a line search's trial
    points may be worse). ``callback(step, X, record)`` returning True stops the run;
    ``progress`` shows a bar of ``total`` steps.
    """

    def __init__(self, total: int, keep: str = "last", callback: Optional[Callable] = None,
                 progress: bool = True, start: Optional[float] = None):
        self.history: list[dict] = []
        self.keep, self.callback = keep, callback
        self.start = time.perf_counter() if start is None else start
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="step", leave=False)

    def begin(self, X: torch.Tensor, objective: Objective, stop_at_loss: Optional[float] = None,
              check_float32: bool = False) -> None:
        """Start a stage at the image ``X``. ``stop_at_loss`` stops at that total loss; with
        ``check_float32`` the loss is confirmed by a float32 evaluation first."""
        self.objective, self.stop_at_loss, self.check_float32 = objective, stop_at_loss, check_float32
        self.kept, self.kept_loss = X.detach().clone(), math.inf
        self.shape = tuple(X.shape[-2:])

    def __call__(self, X, contents_l, styles_l, tv_l, l) -> Optional[str]:
        step = len(self.history)
        record = {"step": step, "content": sum((float(t.detach()) for t in contents_l), 0.0),
                  "style": sum((float(t.detach()) for t in styles_l), 0.0),
                  "tv": float(tv_l.detach()), "total": float(l.detach()),
                  "time": time.perf_counter() - self.start, "shape": self.shape}
        self.history.append(record)
        if not math.isfinite(record["total"]):
            return f"{NON_FINITE} at step {step}; kept the {self.keep} finite image"
        if self.keep == "last" or record["total"] < self.kept_loss:
            self.kept, self.kept_loss = X.detach().clone(), record["total"]
        if self.bar is not None:
            self.bar.set_postfix({k: f"{record[k]:.3g}" for k in ("content", "style", "tv")},
                                 refresh=False)
            self.bar.update()
        if self.stop_at_loss is not None and self.reached(X, record):
            return (f"reached loss {record.get('total_float32', record['total']):.6g} "
                    f"<= {self.stop_at_loss:g} at step {step}")
        if self.callback is not None and self.callback(step, X.detach(), record):
            return f"stopped by callback at step {step}"
        return None

    def reached(self, X: torch.Tensor, record: dict, margin: float = 0.05) -> bool:
        """Whether ``X``'s float32 loss is at most ``stop_at_loss``. In float32 the step's own loss
        is that loss; otherwise it is re-evaluated, once the cheap one is within ``margin``."""
        if not self.check_float32:
            return record["total"] <= self.stop_at_loss
        if record["total"] > self.stop_at_loss * (1 + margin):
            return False
        record["total_float32"] = self.objective.float32_loss(X)
        return record["total_float32"] <= self.stop_at_loss

    def end(self, X: torch.Tensor, reason: Optional[str]) -> None:
        """After a stage that ended for ``reason``: put the kept image back into ``X`` where the
        current one should not be the result (``keep="best"``, or a non-finite loss or image)."""
        if reason is not None and reason.startswith("reached loss"):
            return
        bad = non_finite(reason) or not torch.isfinite(X).all()
        if self.keep == "best" or bad:
            X.data.copy_(self.kept)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

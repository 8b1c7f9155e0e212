"""The fast path's loop: L-BFGS with a strong-Wolfe line search, one record per loss evaluation.

Without a line search, L-BFGS stalls after a coarse stage: its first step is scaled by
1 / |gradient|_1, tiny at the losses of the original weights, and it never recovers. A line search
tries points that may be worse than the current one, so the loop keeps the best image evaluated
(the :class:`d2lstyle.loop.Monitor` passed in does, with ``keep="best"``). Every evaluation,
line-search trials included, is one step of the history and counts against the budget.

A coarse level of the pyramid only has to give the next level a good start, so it may also end
when it has converged (``tolerance``): when the best loss of the last :data:`WINDOW` evaluations
is less than ``tolerance`` (relative) below the best one before them. Then the time a coarse
level takes is set by the problem, and the budget is only a cap.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..loop import Monitor
from ..objective import Objective

# Evaluations over which the relative improvement of the best loss is measured; a strong-Wolfe
# line search takes one to a few evaluations per L-BFGS iteration, so this spans several iterations.
WINDOW = 10


class Stop(Exception):
    """Ends :func:`train_lbfgs` from inside the optimiser's closure; ``reason`` as the monitor's."""

    def __init__(self, reason: Optional[str]):
        super().__init__(reason)
        self.reason = reason


def train_lbfgs(X: torch.Tensor, objective: Objective, num_evaluations: int,
                monitor: Monitor, tolerance: Optional[float] = None) -> Optional[str]:
    """Minimise ``objective`` over the image ``X`` (modified in place) in at most
    ``num_evaluations`` loss evaluations, or until :func:`converged` at ``tolerance`` (None: never);
    returns why the monitor stopped it, or None."""
    # One step() for the whole stage: with max_iter=1 per call, each call would re-evaluate the
    # point where the previous line search ended, doubling the evaluations.
    trainer = torch.optim.LBFGS([X], lr=1.0, max_iter=num_evaluations + 1,
                                max_eval=2 * num_evaluations + 2, history_size=100,
                                line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                tolerance_change=0.0)
    begin = len(monitor.history)
    end = begin + num_evaluations

    def closure():
        trainer.zero_grad()
        contents_Y_hat, styles_Y_hat = objective.extract_features(X)
        contents_l, styles_l, tv_l, l = objective.compute_loss(X, contents_Y_hat, styles_Y_hat)
        l.backward()
        reason = monitor(X, contents_l, styles_l, tv_l, l)
        if reason is not None or len(monitor.history) >= end:
            raise Stop(reason)
        if tolerance is not None and converged(
                [record["total"] for record in monitor.history[begin:]], tolerance):
            raise Stop(None)
        return l

    try:
        trainer.step(closure)  # ends with Stop, at the latest after num_evaluations evaluations
    except Stop as stop:
        return stop.reason
    return None


def converged(losses: list[float], tolerance: float, window: int = WINDOW) -> bool:
    """Whether the best of the last ``window`` ``losses`` is less than ``tolerance`` (relative)
    below the best of those before them: ``(best_before - best_now) <= tolerance * best_before``."""
    if len(losses) <= window:
        return False
    best_before, best_now = min(losses[:-window]), min(losses)
    return best_before - best_now <= tolerance * abs(best_before)

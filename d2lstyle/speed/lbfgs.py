"""The fast path's loop: L-BFGS with a strong-Wolfe line search, one record per loss evaluation.

Without a line search, L-BFGS stalls after a coarse stage: its first step is scaled by
1 / |gradient|_1, tiny at the losses of the original weights, and it never recovers. A line search
tries points that may be worse than the current one, so the loop keeps the best image evaluated
(the :class:`d2lstyle.loop.Monitor` passed in does, with ``keep="best"``). Every evaluation,
line-search trials included, is one step of the history and counts against the budget.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..loop import Monitor
from ..objective import Objective


class Stop(Exception):
    """Ends :func:`train_lbfgs` from inside the optimiser's closure; ``reason`` as the monitor's."""

    def __init__(self, reason: Optional[str]):
        super().__init__(reason)
        self.reason = reason


def train_lbfgs(X: torch.Tensor, objective: Objective, num_evaluations: int,
                monitor: Monitor) -> Optional[str]:
    """Minimise ``objective`` over the image ``X`` (modified in place) in at most
    ``num_evaluations`` loss evaluations; returns why the monitor stopped it, or None."""
    # One step() for the whole stage: with max_iter=1 per call, each call would re-evaluate the
    # point where the previous line search ended, doubling the evaluations.
    trainer = torch.optim.LBFGS([X], lr=1.0, max_iter=num_evaluations + 1,
                                max_eval=2 * num_evaluations + 2, history_size=100,
                                line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                tolerance_change=0.0)
    end = len(monitor.history) + num_evaluations

    def closure():
        trainer.zero_grad()
        contents_Y_hat, styles_Y_hat = objective.extract_features(X)
        contents_l, styles_l, tv_l, l = objective.compute_loss(X, contents_Y_hat, styles_Y_hat)
        l.backward()
        reason = monitor(X, contents_l, styles_l, tv_l, l)
        if reason is not None or len(monitor.history) >= end:
            raise Stop(reason)
        return l

    try:
        trainer.step(closure)  # ends with Stop, at the latest after num_evaluations evaluations
    except Stop as stop:
        return stop.reason
    return None

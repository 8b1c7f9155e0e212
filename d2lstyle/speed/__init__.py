"""How ``transfer(fast=True)`` reaches the same objective sooner, apart from the chapter's code.

:mod:`~d2lstyle.speed.plan` decides once what a run does (stages, optimiser, precision, memory
format); :mod:`~d2lstyle.speed.lbfgs` is the line-search L-BFGS loop of the fast path;
:mod:`~d2lstyle.speed.gram` is the Gram matrix with a one-product backward that every run uses.
"""

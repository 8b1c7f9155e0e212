"""Checks for the notebooks' coding exercises: run a learner's function, compare, explain.

Each ``check_*`` runs the learner's function on several seeded random inputs of different shapes
(batches of more than one image where the package's function is batch-safe), compares the result
with the package's own implementation (:mod:`d2lstyle.losses`, :mod:`d2lstyle.features`,
:mod:`d2lstyle.images`, ...) at a tolerance that depends on the dtype, and prints one line when
they agree. Otherwise it raises :class:`AssertionError` with a diagnosis a learner can act on: a
constant factor off ("off by a factor of c·h·w = 96: divide by c·h·w?"), a wrong shape, a sum
where a mean is meant, half of the TV loss missing, a function that is not batch-safe, that
modifies its input, cuts the gradient, or returns something other than a tensor. A function that
crashes gives the same kind of message (the function, the input, the exception), never a
traceback from inside the checker. An exercise not done yet (``raise NotImplementedError()``)
raises :class:`NotImplementedError` with a one-line hint.

The references are the book's definitions (D2L 14.12) as the package implements them; the three
statistics written only in the notebooks (covariance, per-channel mean and std, the squared TV)
have their reference here, next to their check.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

# One standard-deviation convention for every statistic here (mean_std, adain): over the h·w
# positions of each channel, sqrt(var + eps) with the population variance (divide by h·w) and
# eps = 1e-5, as instance normalisation computes it (Ulyanov et al. 2016; torch's instance_norm).
STD_CONVENTION = "sqrt(var(correction=0) + 1e-5) over the h·w positions of each channel"

# Relative tolerance on the largest entry, by dtype: float32 sums of a few hundred products agree
# to ~1e-6 relative whatever the order of summation; 1e-4 leaves room without hiding any factor.
RTOL = {torch.float32: 1e-4, torch.float64: 1e-9}


# ----------------------------------------------------------------------------- helpers

def _shape(x) -> str:
    if isinstance(x, torch.Tensor):
        return str(tuple(x.shape))
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_shape(v) for v in x) + "]"
    return type(x).__name__


def _call(fn: Callable, name: str, *args, described: str | None = None):
    """``fn(*args)``, with any exception turned into a one-line AssertionError naming the input."""
    described = described or ", ".join(_shape(a) for a in args)
    try:
        return fn(*args)
    except NotImplementedError:
        raise NotImplementedError(
            f"{name} is not written yet: replace `raise NotImplementedError()` with your code, "
            "then run the cell again") from None
    except Exception as error:  # the learner's bug, reported without the checker's traceback
        raise AssertionError(
            f"{name} crashed on input {described}: {type(error).__name__}: {error}") from None


def _rel_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    scale = expected.abs().max().item() if expected.numel() else 0.0
    diff = (got - expected).abs().max().item() if expected.numel() else 0.0
    return diff / scale if scale > 0 else diff


def _tolerance(dtype) -> float:
    return RTOL.get(dtype, 1e-4)


def _ratio(got: torch.Tensor, expected: torch.Tensor):
    """The constant r with got ≈ r * expected, or None if no such constant fits."""
    e, g = expected.double().flatten(), got.double().flatten()
    denominator = (e * e).sum().item()
    if denominator == 0:
        return None
    r = (g * e).sum().item() / denominator
    if not math.isfinite(r) or r == 0:
        return None
    if _rel_error(g, r * e) > 1e-3:
        return None
    return r


def _explain_factor(r: float, factors: Sequence[tuple[str, float, str]]) -> str:
    """Name the factor r (got / expected) if it is one of ``factors`` or its inverse."""
    for label, value, hint in factors:
        large, small = hint if isinstance(hint, tuple) else (hint, hint)
        named = label if label == f"{value:g}" else f"{label} = {value:g}"
        if value != 1 and abs(r / value - 1) < 1e-3:
            return f"off by a factor of {named} (yours is {value:g} times too large): {large}"
        if value != 1 and abs(r * value - 1) < 1e-3:
            return f"off by a factor of {named} (yours is {value:g} times too small): {small}"
    return f"off by a constant factor: yours is {r:.6g} times the reference"


def _as_tensor(result, name: str, described: str, what: str = "a torch.Tensor") -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise AssertionError(
            f"{name} returned {type(result).__name__} for input {described}; expected {what}. "
            "Keep the computation in torch (no .item(), .tolist() or numpy) so that gradients "
            "can flow through it")
    return result


def _compare(name: str, got, expected: torch.Tensor, described: str, *,
             factors: Sequence[tuple[str, float, str]] = (), shape_hint: str = "",
             wrong: Sequence[tuple[torch.Tensor, str]] = ()) -> None:
    """Assert ``got`` equals ``expected``; otherwise say how it differs, as specifically as we can.

    ``wrong`` lists (value, message) pairs of known wrong answers, recognised before the generic
    diagnoses.
    """
    got = _as_tensor(got, name, described)
    if tuple(got.shape) != tuple(expected.shape):
        raise AssertionError(f"{name} returned shape {tuple(got.shape)} for input {described}; "
                             f"expected {tuple(expected.shape)}" + (f": {shape_hint}" if shape_hint else ""))
    if got.dtype != expected.dtype:
        raise AssertionError(f"{name} returned dtype {got.dtype} for input {described}; "
                             f"expected {expected.dtype}, the input's: create any constant with "
                             "dtype=X.dtype (or use Python numbers), and do not call .float()")
    got = got.detach().to(expected.dtype)
    if not torch.isfinite(got).all():
        raise AssertionError(f"{name} returned non-finite values (nan or inf) for input {described}")
    tol = _tolerance(expected.dtype)
    if _rel_error(got, expected) <= tol:
        return
    for value, message in wrong:
        if value.shape == got.shape and _rel_error(got, value.to(got.dtype)) <= tol:
            raise AssertionError(f"{name}, input {described}: {message}")
    r = _ratio(got, expected)
    if r is not None:
        raise AssertionError(f"{name}, input {described}: {_explain_factor(r, factors)}")
    err = _rel_error(got, expected)
    if got.dim() == 0:
        raise AssertionError(f"{name}, input {described}: returned {got.item():.6g}, expected "
                             f"{expected.item():.6g} (relative difference {err:.2g})")
    index = tuple(int(i) for i in torch.unravel_index((got - expected).abs().argmax(), got.shape))
    raise AssertionError(
        f"{name}, input {described}: values differ; largest difference at index {index}: "
        f"{got[index].item():.6g} instead of {expected[index].item():.6g} "
        f"(relative to the largest entry: {err:.2g}, tolerance {tol:g})")


def _unchanged(name: str, before: Sequence[torch.Tensor], after: Sequence[torch.Tensor], described: str):
    for k, (b, a) in enumerate(zip(before, after)):
        if not torch.equal(b, a.detach()):
            raise AssertionError(
                f"{name} modified its input (argument {k + 1}) for input {described}: work on a "
                "copy (for example X = X - m, not X -= m or X.sub_(m))")


def _needs_grad(name: str, result: torch.Tensor, described: str, what: str = "its input"):
    if not result.requires_grad:
        raise AssertionError(
            f"{name}'s result carries no gradient back to {what} (input {described}): do not use "
            ".item(), .detach(), .data, numpy or torch.no_grad() inside it; the optimiser needs "
            "the gradient with respect to the image")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape, seed, dtype=torch.float32, positive=False):
    X = torch.randn(shape, generator=_gen(seed), dtype=dtype)
    return X.abs() if positive else X


def _ok(name: str, reference: str, shapes: Sequence) -> None:
    listed = ", ".join(str(tuple(s)) for s in shapes)
    print(f"OK: {name} agrees with {reference} on {len(shapes)} inputs ({listed})")


def _name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


# Feature maps (n, c, h, w) used by the feature-map checks: batch of one first, then batches,
# a float64 one, and odd sizes so that h, w, c and h*w are all different numbers.
FEATURE_SHAPES = [((1, 3, 4, 8), torch.float32), ((1, 5, 6, 7), torch.float64),
                  ((2, 4, 5, 6), torch.float32), ((3, 2, 3, 5), torch.float64)]


# ----------------------------------------------------------------------------- gram

def check_gram(fn: Callable, batch: bool = True) -> None:
    """``fn(X)``: (n, c, h, w) -> (n, c, c), each image's X Xᵀ / (c·h·w) (D2L 14.12).

    With ``batch=False`` only batches of one are tried, and the book's (c, c) result for them
    is accepted too (the book's ``gram`` is only right for one image).
    """
    from ..losses import gram

    name = _name(fn)
    shapes = [(s, d) for s, d in FEATURE_SHAPES if batch or s[0] == 1]
    for k, (shape, dtype) in enumerate(shapes):
        X = _randn(shape, k, dtype, positive=True).requires_grad_(True)  # post-ReLU-like features
        before = X.detach().clone()
        n, c, h, w = shape
        described = f"X of shape {shape}, {str(dtype).replace('torch.', '')}"
        got = _as_tensor(_call(fn, name, X, described=described), name, described)
        _unchanged(name, [before], [X], described)
        expected = gram(X.detach())
        if n == 1 and tuple(got.shape) == (c, c):  # the book's shape for a batch of one
            expected = expected[0]
        elif n > 1 and tuple(got.shape) in ((c, c), (n * c, n * c)):
            raise AssertionError(
                f"{name} is not batch-safe: for input {described} it returned shape "
                f"{tuple(got.shape)}, expected {(n, c, c)}: one Gram matrix per image. Keep the batch "
                "dimension apart: reshape to (n, c, h·w) and multiply each image's (c, h·w) matrix "
                "by its own transpose, e.g. F @ F.transpose(1, 2)")
        if tuple(got.shape) in ((n, h * w, h * w), (h * w, h * w)):
            hint = (f"expected (c, c) = {(c, c)} per image, got (h·w, h·w): reshape to (channels, h·w) "
                    "and compute F @ Fᵀ, not Fᵀ @ F")
        else:
            hint = f"expected (c, c) = {(c, c)} per image: reshape to (channels, h·w) and compute F @ Fᵀ"
        F = X.detach().reshape(n, c, h * w)
        _compare(name, got, expected, described, shape_hint=hint, factors=[
            ("c·h·w", c * h * w, ("divide F Fᵀ by c·h·w, the number of entries of one image's features",
                                 "divide by c·h·w once")),
            ("h·w", h * w, ("divide by c·h·w, not by c alone", "divide by c·h·w once")),
            ("c", c, ("divide by c·h·w, not by h·w alone", "divide by c·h·w, not c²·h·w")),
            ("n", n, "each image's Gram matrix is its own: do not sum or average over the batch")],
            wrong=[(torch.stack([f @ f.T for f in F]).sum(0) / (c * h * w) * torch.ones(n, 1, 1),
                    "every image got the batch's summed Gram matrix: compute one per image")]
            if n > 1 else ())
        _needs_grad(name, got, described, "X")
    _ok(name, "d2lstyle.gram", [s for s, _ in shapes])


# ----------------------------------------------------------------------------- content loss

def _scalar(name: str, got, described: str) -> torch.Tensor:
    got = _as_tensor(got, name, described, "a scalar tensor (0 dimensions)")
    if got.dim() != 0:
        hint = (" Did you forget the mean over all entries?" if got.numel() > 1 else
                " Return a 0-dimensional tensor: .mean() or .sum() give one, .reshape(()) makes one.")
        raise AssertionError(f"{name} returned a tensor of shape {tuple(got.shape)} for input "
                             f"{described}; expected a scalar (shape ()).{hint}")
    return got


def _detached_target(name: str, fn: Callable, args: list, target_index: int, described: str,
                     target: str = "Y"):
    """The loss must not send a gradient into its target (argument ``target_index``)."""
    leaf = args[target_index].detach().clone().requires_grad_(True)
    call_args = list(args)
    call_args[target_index] = leaf
    l = _call(fn, name, *call_args, described=described)
    if isinstance(l, torch.Tensor) and l.requires_grad:
        (grad,) = torch.autograd.grad(l, leaf, allow_unused=True)
        if grad is not None and grad.abs().max() > 0:
            raise AssertionError(
                f"{name} sends a gradient into the target (argument {target_index + 1}, input "
                f"{described}): the target is a constant of the optimisation; use {target}.detach()")


def check_content_loss(fn: Callable) -> None:
    """``fn(Y_hat, Y)``: mean squared difference of the features, target detached (D2L 14.12)."""
    from ..book import content_loss

    name = _name(fn)
    for k, (shape, dtype) in enumerate(FEATURE_SHAPES):
        Y_hat = _randn(shape, 2 * k, dtype).requires_grad_(True)
        Y = _randn(shape, 2 * k + 1, dtype)
        before = [Y_hat.detach().clone(), Y.clone()]
        described = f"Y_hat and Y of shape {shape}, {str(dtype).replace('torch.', '')}"
        got = _scalar(name, _call(fn, name, Y_hat, Y, described=described), described)
        _unchanged(name, before, [Y_hat, Y], described)
        numel = Y.numel()
        diff = Y_hat.detach() - Y
        _compare(name, got, content_loss(Y_hat.detach(), Y), described, factors=[
            ("n·c·h·w", numel, "use the mean of the squared differences, not their sum"),
            ("c·h·w", numel // shape[0], "take the mean over all entries, batch included"),
            ("2", 2, "the book's content loss is the plain mean, without Gatys' factor 1/2"),
        ], wrong=[(diff.abs().mean(), "that is the mean absolute difference; square the differences"),
                  (diff.square().mean().sqrt(), "that is the root of the mean square; drop the sqrt"),
                  (diff.mean().square(), "square each difference before averaging, not the mean")])
        _needs_grad(name, got, described, "Y_hat")
        _detached_target(name, fn, [Y_hat.detach(), Y], 1, described)
    _ok(name, "d2lstyle.book.content_loss", [s for s, _ in FEATURE_SHAPES])


# ----------------------------------------------------------------------------- style loss

def check_style_loss(fn: Callable) -> None:
    """``fn(Y_hat, gram_Y)``: mean squared difference between gram(Y_hat) and the target Gram
    matrix ``gram_Y`` (D2L 14.12), target detached."""
    from ..losses import gram, style_loss

    name = _name(fn)
    shapes = [(s, d) for s, d in FEATURE_SHAPES if s[0] == 1] + [((2, 4, 5, 6), torch.float32)]
    for k, (shape, dtype) in enumerate(shapes):
        n, c, h, w = shape
        Y_hat = _randn(shape, 2 * k, dtype, positive=True).requires_grad_(True)
        gram_Y = gram(_randn(shape, 2 * k + 1, dtype, positive=True))
        before = [Y_hat.detach().clone(), gram_Y.clone()]
        described = (f"Y_hat of shape {shape} and gram_Y of shape {tuple(gram_Y.shape)}, "
                     f"{str(dtype).replace('torch.', '')}")
        got = _scalar(name, _call(fn, name, Y_hat, gram_Y, described=described), described)
        _unchanged(name, before, [Y_hat, gram_Y], described)
        G = gram(Y_hat.detach())
        _compare(name, got, style_loss(Y_hat.detach(), gram_Y), described, factors=[
            ("c·c", c * c, "use the mean of the squared differences of the c x c entries, not their sum"),
            ("n·c·c", n * c * c, "use the mean of the squared differences, not their sum"),
            ("2", 2, "the book's style loss is the plain mean of the squared differences"),
        ], wrong=[((gram(Y_hat.detach(), "hw") - gram_Y).square().mean(),
                   "gram(Y_hat) is divided by h·w only; divide by c·h·w as gram_Y was (d2lstyle.gram)"),
                  ((Y_hat.detach().reshape(n, c, -1) @ Y_hat.detach().reshape(n, c, -1).transpose(1, 2)
                    - gram_Y).square().mean(),
                   "gram(Y_hat) is not divided at all; divide F Fᵀ by c·h·w as gram_Y was (d2lstyle.gram)"),
                  ((G - gram_Y).abs().mean(), "that is the mean absolute difference; square it"),
                  ((G - gram_Y).square().sum().sqrt(), "that is the Frobenius norm; the book takes "
                   "the mean of the squared differences")])
        _needs_grad(name, got, described, "Y_hat")
        _detached_target(name, fn, [Y_hat.detach(), gram_Y], 1, described, "gram_Y")
    _ok(name, "d2lstyle.style_loss", [s for s, _ in shapes])


# ----------------------------------------------------------------------------- TV loss

def _tv_halves(X: torch.Tensor, p: int):
    vertical = (X[:, :, 1:, :] - X[:, :, :-1, :]).abs().pow(p).mean()
    horizontal = (X[:, :, :, 1:] - X[:, :, :, :-1]).abs().pow(p).mean()
    return vertical, horizontal


def _check_tv(fn: Callable, p: int, reference: Callable, reference_name: str) -> None:
    name = _name(fn)
    shapes = [((1, 3, 4, 8), torch.float32), ((2, 3, 7, 5), torch.float32),
              ((1, 1, 6, 6), torch.float64), ((3, 2, 5, 9), torch.float32)]
    for k, (shape, dtype) in enumerate(shapes):
        X = _randn(shape, k, dtype).requires_grad_(True)
        before = X.detach().clone()
        described = f"X of shape {shape}, {str(dtype).replace('torch.', '')}"
        got = _scalar(name, _call(fn, name, X, described=described), described)
        _unchanged(name, [before], [X], described)
        Xd = X.detach()
        v, hz = _tv_halves(Xd, p)
        v_other, h_other = _tv_halves(Xd, 3 - p)
        other = "squared" if p == 1 else "absolute"
        this = "absolute differences" if p == 1 else "squared differences"
        n_v, n_h = Xd[:, :, 1:, :].numel(), Xd[:, :, :, 1:].numel()
        _compare(name, got, reference(Xd), described, factors=[
            ("2", 2, "the book's TV is HALF the sum of the two means: 0.5 * (vertical + horizontal)"),
        ], wrong=[
            (0.5 * v, "only the vertical half (differences along the height, X[:, :, 1:, :] - "
                      "X[:, :, :-1, :]) is there; add the horizontal one along the width"),
            (0.5 * hz, "only the horizontal half (differences along the width, X[:, :, :, 1:] - "
                       "X[:, :, :, :-1]) is there; add the vertical one along the height"),
            (v, "only the vertical differences, without the 1/2; add the horizontal half"),
            (hz, "only the horizontal differences, without the 1/2; add the vertical half"),
            (0.5 * (v_other + h_other), f"you took {other} differences; this TV uses {this}"),
            (0.5 * ((Xd[:, :, 1:, :] - Xd[:, :, :-1, :]).abs().pow(p).sum() / n_h
                    + (Xd[:, :, :, 1:] - Xd[:, :, :, :-1]).abs().pow(p).sum() / n_v),
             "the two means are divided by each other's number of differences: the vertical "
             "mean has (h-1)·w differences per channel, the horizontal h·(w-1)"),
            (0.5 * ((Xd[:, :, 1:, :] - Xd[:, :, :-1, :]).abs().pow(p).sum()
                    + (Xd[:, :, :, 1:] - Xd[:, :, :, :-1]).abs().pow(p).sum()),
             f"sum instead of mean: take the mean of the {this} in each direction"),
            (0.5 * (Xd.roll(1, 2) - Xd).abs().pow(p).mean() + 0.5 * (Xd.roll(1, 3) - Xd).abs().pow(p).mean(),
             "the differences wrap around the border (torch.roll): use slices such as "
             "X[:, :, 1:, :] - X[:, :, :-1, :]"),
        ])
        _needs_grad(name, got, described, "X")
    _ok(name, reference_name, [s for s, _ in shapes])


def check_tv_loss(fn: Callable) -> None:
    """``fn(X)``: 0.5 * (mean |vertical differences| + mean |horizontal differences|) (D2L 14.12)."""
    from ..book import tv_loss

    _check_tv(fn, 1, tv_loss, "d2lstyle.book.tv_loss")


def tv_l2(X: torch.Tensor) -> torch.Tensor:
    """Reference of notebook 04's squared TV: 0.5 * (mean (Δ_v x)² + mean (Δ_h x)²), X (n, c, h, w)."""
    vertical, horizontal = _tv_halves(X, 2)
    return 0.5 * (vertical + horizontal)


def check_tv_l2(fn: Callable) -> None:
    """``fn(X)``: the squared counterpart of the TV loss, with the same 1/2 and means."""
    _check_tv(fn, 2, tv_l2, "the squared TV, 0.5 * (mean Δv² + mean Δh²)")


# ----------------------------------------------------------------------------- statistics (03)

def covariance(Y: torch.Tensor) -> torch.Tensor:
    """Reference of notebook 03's covariance: (n, c, h, w) -> (n, c, c), each channel centred,
    divided by h·w (the population covariance of the feature vectors over positions)."""
    n, c, h, w = Y.shape
    F = Y.reshape(n, c, h * w)  # (n, c, hw)
    F = F - F.mean(dim=2, keepdim=True)
    return F @ F.transpose(1, 2) / (h * w)  # (n, c, c)


def check_covariance(fn: Callable) -> None:
    """``fn(Y)``: (n, c, h, w) -> (n, c, c), the covariance of the channels over positions."""
    from ..losses import gram

    name = _name(fn)
    for k, (shape, dtype) in enumerate(FEATURE_SHAPES):
        n, c, h, w = shape
        Y = (_randn(shape, k, dtype, positive=True) + 0.5).requires_grad_(True)  # means well off 0
        before = Y.detach().clone()
        described = f"Y of shape {shape}, {str(dtype).replace('torch.', '')}"
        got = _as_tensor(_call(fn, name, Y, described=described), name, described)
        _unchanged(name, [before], [Y], described)
        if n > 1 and tuple(got.shape) == (c, c):
            raise AssertionError(f"{name} is not batch-safe: for input {described} it returned "
                                 f"shape {(c, c)}, expected {(n, c, c)}: one matrix per image")
        Yd = Y.detach()
        expected = covariance(Yd)
        if n == 1 and tuple(got.shape) == (c, c):  # a batch of one, in the book's gram's shape
            expected = expected[0]
        _compare(name, got, expected, described,
                 shape_hint="one (c, c) matrix per image: reshape to (n, c, h·w), centre, F @ Fᵀ",
                 factors=[("h·w/(h·w−1)", h * w / (h * w - 1),
                           "divide by h·w (the population covariance), not h·w − 1"),
                          ("h·w", h * w, "divide the centred F Fᵀ by h·w, the number of positions"),
                          ("c", c, "divide by h·w only, not by c·h·w")],
                 wrong=[(gram(Yd, "hw"), "this is the Gram matrix: subtract each channel's mean "
                                         "(over positions) before the product"),
                        (_global_centred(Yd),
                         "centre each channel by its own mean over positions (mean over dim 2 "
                         "of the (n, c, h·w) matrix), not by one mean over everything")])
        _needs_grad(name, got, described, "Y")
    _ok(name, "the covariance (n, c, c) over positions", [s for s, _ in FEATURE_SHAPES])


def _global_centred(Y: torch.Tensor) -> torch.Tensor:
    n, c, h, w = Y.shape
    F = Y.reshape(n, c, h * w)
    F = F - F.mean()
    return F @ F.transpose(1, 2) / (h * w)


def mean_std(Y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Reference of notebook 03's statistic: (n, c, h, w) -> (n, 2c), each channel's mean over
    positions, then its standard deviation (:data:`STD_CONVENTION`)."""
    mean, std = _channel_mean_std(Y, eps)  # (n, c, 1, 1) each
    return torch.cat([mean.flatten(1), std.flatten(1)], dim=1)  # (n, 2c)


def check_mean_std(fn: Callable) -> None:
    """``fn(Y)``: (n, c, h, w) -> (n, 2c): the c channel means, then the c standard deviations
    sqrt(var + 1e-5), over positions. Its gradient must stay finite for a constant channel."""
    name = _name(fn)
    for k, (shape, dtype) in enumerate(FEATURE_SHAPES):
        n, c, h, w = shape
        Y = _randn(shape, k, dtype).requires_grad_(True)
        before = Y.detach().clone()
        described = f"Y of shape {shape}, {str(dtype).replace('torch.', '')}"
        got = _as_tensor(_call(fn, name, Y, described=described), name, described)
        _unchanged(name, [before], [Y], described)
        Yd = Y.detach()
        F = Yd.reshape(n, c, h * w)
        mean, var = F.mean(2), F.var(2, correction=0)
        if tuple(got.shape) == (n, c, 2):
            raise AssertionError(f"{name} returned shape {(n, c, 2)} for input {described}; expected "
                                 f"{(n, 2 * c)}: the c means first, then the c standard deviations "
                                 "(torch.cat([means, stds], dim=1))")
        if n > 1 and tuple(got.shape) == (2 * c,):
            raise AssertionError(f"{name} is not batch-safe: returned shape {(2 * c,)} for input "
                                 f"{described}; expected {(n, 2 * c)}, one row per image")
        # float32: sqrt(var + 1e-5) vs sqrt(var) differ by ~1e-5 relative; accept either eps choice.
        _compare(name, got, mean_std(Yd), described,
                 shape_hint="the c means then the c standard deviations of each image: (n, 2c)",
                 wrong=[(torch.cat([mean, (F.var(2, correction=1) + 1e-5).sqrt()], 1),
                         "the standard deviation divides by h·w − 1 (unbiased); use the population "
                         "one: var(dim=2, correction=0), as instance normalisation does"),
                        (torch.cat([mean, var + 1e-5], 1), "these are variances; take the square root"),
                        (torch.cat([(var + 1e-5).sqrt(), mean], 1),
                         "the order is swapped: the means first, then the standard deviations"),
                        (torch.cat([mean, var.sqrt()], 1) if dtype == torch.float64 else torch.empty(0),
                         "the standard deviation needs the small eps: sqrt(var + 1e-5)")])
        _needs_grad(name, got, described, "Y")
    # A channel that is constant has variance 0, where sqrt has an infinite derivative.
    Y = torch.ones(1, 2, 3, 3, requires_grad=True)
    described = "Y of shape (1, 2, 3, 3) whose channels are constant"
    out = _as_tensor(_call(fn, name, Y, described=described), name, described)
    (grad,) = torch.autograd.grad(out.sum(), Y, allow_unused=True)
    if grad is None or not torch.isfinite(grad).all():
        raise AssertionError(f"{name}'s gradient is not finite for {described}: sqrt'(0) is "
                             "infinite; add a small eps inside the square root, sqrt(var + 1e-5)")
    _ok(name, "the per-channel mean and std (n, 2c)", [s for s, _ in FEATURE_SHAPES])


# ----------------------------------------------------------------------------- images (01)

def _random_image(width: int, height: int, seed: int):
    from PIL import Image

    pixels = torch.randint(0, 256, (height, width, 3), generator=_gen(seed), dtype=torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


def check_preprocess(fn: Callable) -> None:
    """``fn(img, image_shape)``: PIL image -> (1, 3, h, w) float tensor, resized to image_shape
    = (h, w), scaled to [0, 1] and normalised with ImageNet's mean and std (D2L 14.12)."""
    from ..images import preprocess
    from ..vgg import IMAGENET_MEAN, IMAGENET_STD

    name = _name(fn)
    cases = [((40, 30), (12, 20)), ((25, 50), (16, 16)), ((64, 48), (30, 45)), ((33, 33), (33, 33))]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for k, ((width, height), image_shape) in enumerate(cases):
        img = _random_image(width, height, k)
        copy = img.copy()
        described = f"a {width}x{height} PIL image with image_shape={image_shape}"
        got = _as_tensor(_call(fn, name, img, image_shape, described=described), name, described)
        if img.tobytes() != copy.tobytes():
            raise AssertionError(f"{name} modified the PIL image it was given ({described})")
        expected = preprocess(img, image_shape)
        h, w = image_shape
        if tuple(got.shape) == (3, h, w):
            raise AssertionError(f"{name} returned shape {(3, h, w)} for {described}; expected "
                                 f"{(1, 3, h, w)}: add the batch dimension with .unsqueeze(0)")
        if tuple(got.shape) in ((1, 3, w, h), (3, w, h)) and h != w:
            raise AssertionError(f"{name} returned shape {tuple(got.shape)} for {described}; expected "
                                 f"{(1, 3, h, w)}: image_shape is (height, width), as torchvision's "
                                 "Resize takes it (PIL's resize takes (width, height))")
        if tuple(got.shape) == (1, h, w, 3):
            raise AssertionError(f"{name} returned shape {(1, h, w, 3)} for {described}; expected "
                                 f"{(1, 3, h, w)}: channels first (ToTensor gives (3, h, w))")
        unit = expected * std + mean
        _compare(name, got, expected, described,
                 shape_hint="resize to image_shape = (h, w), then (1, 3, h, w)",
                 wrong=[(unit, "the values are in [0, 1]: normalise each channel, (X - mean) / std, "
                               "with ImageNet's mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225]"),
                        (unit * 255, "the values are in 0..255: scale to [0, 1] (ToTensor does), "
                                     "then normalise"),
                        ((unit - mean), "subtract the mean AND divide by the std"),
                        ((unit - std) / mean, "mean and std are swapped: (X - mean) / std"),
                        (unit / std - mean, "normalise as (X - mean) / std, not X / std - mean"),
                        ((unit.flip(1) - mean) / std, "the channels are in BGR order; keep RGB")])
        if got.dtype != torch.float32:
            raise AssertionError(f"{name} returned dtype {got.dtype} for {described}; expected torch.float32")
    _ok(name, "d2lstyle.preprocess", [(1, 3) + tuple(s) for _, s in cases])


def check_postprocess(fn: Callable) -> None:
    """``fn(X)``: (1, 3, h, w) tensor in the book's space -> PIL RGB image of size (w, h), the
    normalisation undone and clamped to [0, 1]. Rounding (d2lstyle) or truncating to 0..255
    (the book's ToPILImage) are both accepted: pixels may differ by one grey level."""
    import numpy as np
    from PIL import Image

    from ..images import postprocess

    name = _name(fn)
    shapes = [(1, 3, 8, 12), (1, 3, 15, 9), (1, 3, 5, 5)]
    for k, shape in enumerate(shapes):
        X = 1.5 * _randn(shape, k)  # some values outside the image's range, to be clamped
        before = X.clone()
        described = f"X of shape {shape}"
        got = _call(fn, name, X, described=described)
        _unchanged(name, [before], [X], described)
        if isinstance(got, torch.Tensor):
            raise AssertionError(f"{name} returned a tensor for {described}; expected a PIL image "
                                 "(torchvision.transforms.ToPILImage() or TF.to_pil_image make one)")
        if not isinstance(got, Image.Image):
            raise AssertionError(f"{name} returned {type(got).__name__} for {described}; expected a PIL image")
        expected = postprocess(X)
        if got.size != expected.size:
            raise AssertionError(f"{name} returned an image of size {got.size} (width, height) for "
                                 f"{described}; expected {expected.size}: drop the batch dimension "
                                 "(X[0]) and keep (3, h, w) in channel-first order")
        if got.mode != "RGB":
            raise AssertionError(f"{name} returned a {got.mode} image for {described}; expected RGB")
        a = np.asarray(got, dtype=np.int16)
        b = np.asarray(expected, dtype=np.int16)
        worst = int(np.abs(a - b).max())
        if worst > 1:
            from ..vgg import IMAGENET_MEAN, IMAGENET_STD

            unclamped = X * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            inside = ((unclamped >= 0) & (unclamped <= 1)).all(1)[0].numpy()
            if np.abs(a - b).max(axis=2)[inside].max(initial=0) <= 1:
                raise AssertionError(f"{name}: pixels whose values fall outside [0, 1] are wrong "
                                     f"({described}): clamp to [0, 1] before converting to 8 bits")
            raise AssertionError(
                f"{name}: pixels differ from d2lstyle.postprocess by up to {worst} grey levels "
                f"({described}): undo the normalisation as X * std + mean (per channel), then clamp "
                "to [0, 1] and convert")
    _ok(name, "d2lstyle.postprocess (within one grey level)", shapes)


# ----------------------------------------------------------------------------- VGG layers (01)

def check_layer_names(fn: Callable) -> None:
    """``fn()``: the 37 names of ``vgg19().features``' modules in order: conv1_1, relu1_1, ...,
    pool5 (VGG19 = configuration E of Simonyan & Zisserman 2015; d2lstyle.LAYER_NAMES)."""
    from ..vgg import LAYER_NAMES

    name = _name(fn)
    got = _call(fn, name, described="no arguments")
    try:
        got = [str(x) for x in got]
    except TypeError:
        raise AssertionError(f"{name}() returned {type(got).__name__}; expected a list of 37 "
                             "names such as 'conv1_1'") from None
    for i, (mine, right) in enumerate(zip(got, LAYER_NAMES)):
        if mine != right:
            block = right[4]
            hint = {"conv": "each ReLU follows its convolution", "relu": "a ReLU follows every convolution",
                    "pool": f"block {block} ends with a pooling layer after its last ReLU"}[right[:4]]
            raise AssertionError(f"{name}(): index {i} should be {right!r}, got {mine!r}: {hint} "
                                 "(blocks of 2, 2, 4, 4, 4 convolutions; names convB_K, reluB_K, poolB)")
    if len(got) != len(LAYER_NAMES):
        raise AssertionError(f"{name}() returned {len(got)} names; VGG19's features have "
                             f"{len(LAYER_NAMES)} modules (16 convolutions, 16 ReLUs, 5 poolings)")
    print(f"OK: {name}() gives the {len(LAYER_NAMES)} names of d2lstyle.LAYER_NAMES")


def _small_net(seed: int) -> torch.nn.Sequential:
    """A VGG-like stack of 9 modules with small random convolutions and in-place-free ReLUs."""
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                            nn.Conv2d(6, 6, 3, padding=1), nn.ReLU())
    return net.requires_grad_(False).eval()


def check_extract_features(fn: Callable) -> None:
    """``fn(X, net, content_layers, style_layers)``: run X through ``net`` module by module and
    return ``(contents, styles)``, the outputs at the given indices, in the order given (D2L 14.12).

    Tried with a small VGG-like network (9 modules) and the book's integer indices.
    """
    from ..features import extract_features

    name = _name(fn)
    cases = [((1, 3, 8, 8), [7], [0, 2, 5]), ((2, 3, 6, 10), [3], [1, 6, 8]),
             ((1, 3, 8, 6), [2, 8], [0, 5])]  # sorted, as the book always passes them
    for k, (shape, content_layers, style_layers) in enumerate(cases):
        net = _small_net(k)
        X = _randn(shape, k).requires_grad_(True)
        before = X.detach().clone()
        described = (f"X of shape {shape}, a 9-module network, content_layers={content_layers}, "
                     f"style_layers={style_layers}")
        got = _call(fn, name, X, net, list(content_layers), list(style_layers), described=described)
        _unchanged(name, [before], [X], described)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise AssertionError(f"{name} returned {type(got).__name__} for {described}; expected a "
                                 "pair (contents, styles) of lists of tensors")
        contents, styles = got
        exp_contents, exp_styles = extract_features(X.detach(), net, content_layers, style_layers)
        if len(contents) == len(exp_styles) and len(styles) == len(exp_contents) and \
                len(exp_contents) != len(exp_styles):
            raise AssertionError(f"{name}: contents and styles are swapped ({described}): return "
                                 "(contents, styles), the content layers' outputs first")
        outputs, Y = {}, X.detach()  # every module's output, to say which one a wrong answer holds
        for i, module in enumerate(net):
            Y = module(Y)
            outputs[i] = Y
        for label, mine, right, layers in (("contents", contents, exp_contents, content_layers),
                                          ("styles", styles, exp_styles, style_layers)):
            if len(mine) != len(right):
                raise AssertionError(f"{name}: {label} has {len(mine)} tensors for {described}; "
                                     f"expected {len(right)}, one per layer in {layers}")
            for j, (m, r, layer) in enumerate(zip(mine, right, layers)):
                m = _as_tensor(m, name, described)
                if tuple(m.shape) == tuple(r.shape) and _rel_error(m.detach(), r) <= 1e-4:
                    continue
                found = [i for i, out in outputs.items()
                         if tuple(out.shape) == tuple(m.shape) and _rel_error(m.detach(), out) <= 1e-4]
                if found:
                    raise AssertionError(
                        f"{name}: {label}[{j}] is the output of module {found[0]}, expected module "
                        f"{layer} ({described}). Keep the output of module i right after running it, "
                        "and return the outputs in the order the layers are given")
                if tuple(m.shape) == tuple(X.shape) and torch.equal(m.detach(), X.detach()):
                    raise AssertionError(f"{name}: {label}[{j}] is the input X itself ({described}): "
                                         "pass X through each module in turn, X = net[i](X)")
                _compare(name, m, r, described + f", {label}[{j}]")
            if mine and not all(isinstance(m, torch.Tensor) and m.requires_grad for m in mine):
                raise AssertionError(f"{name}: the outputs carry no gradient back to X ({described}): "
                                     "do not use torch.no_grad() or .detach() inside it")
    _ok(name, "d2lstyle.extract_features", [c[0] for c in cases])


# ----------------------------------------------------------------------------- the loss (05)

def check_compute_loss(fn: Callable) -> None:
    """``fn(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings)``: the book's
    ``compute_loss``, returning ``(contents_l, styles_l, tv_l, l)`` with the weights of
    ``settings`` (a :class:`d2lstyle.Preset`): see :func:`d2lstyle.compute_loss`."""
    from ..losses import gram
    from ..presets import PRESETS
    from ..objective import compute_loss

    name = _name(fn)
    weight_sets = [(1.0, 1e4, 10.0), (2.0, 0.5, 3.0), (0.3, 7.0, 0.0)]
    layer_shapes = [[(1, 4, 6, 8)], [(1, 3, 6, 6), (1, 5, 3, 3)], [(1, 4, 5, 5)]]
    for k, ((cw, sw, tw), style_shapes) in enumerate(zip(weight_sets, layer_shapes)):
        settings = PRESETS["d2l"].with_overrides(content_weight=cw, style_weight=sw, tv_weight=tw)
        X = _randn((1, 3, 12, 16), 10 * k).requires_grad_(True)
        contents_Y_hat = [(X.mean() + _randn((1, 4, 6, 8), 10 * k + 1))]
        contents_Y = [_randn((1, 4, 6, 8), 10 * k + 2)]
        styles_Y_hat = [X.mean() + _randn(s, 10 * k + 3 + j, positive=True) for j, s in enumerate(style_shapes)]
        styles_Y_gram = [gram(_randn(s, 10 * k + 6 + j, positive=True)) for j, s in enumerate(style_shapes)]
        described = (f"weights content {cw:g}, style {sw:g}, TV {tw:g}; {len(contents_Y)} content "
                     f"layer, {len(style_shapes)} style layer(s)")
        got = _call(fn, name, X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings,
                    described=described)
        if not (isinstance(got, (tuple, list)) and len(got) == 4):
            raise AssertionError(f"{name} returned {type(got).__name__} for {described}; expected "
                                 "the four values (contents_l, styles_l, tv_l, l)")
        contents_l, styles_l, tv_l, l = got
        exp = compute_loss(X.detach(), [Y.detach() for Y in contents_Y_hat],
                           [Y.detach() for Y in styles_Y_hat], contents_Y, styles_Y_gram, settings)
        for label, mine, right in (("contents_l", contents_l, exp[0]), ("styles_l", styles_l, exp[1])):
            if not isinstance(mine, (list, tuple)) or len(mine) != len(right):
                raise AssertionError(f"{name}: {label} should be a list with one term per layer "
                                     f"({len(right)} here) for {described}; got {_shape(mine)}")
        weights = {"content": cw, "style": sw, "TV": tw}
        for term, mine, right in (("content", list(contents_l), exp[0]), ("style", list(styles_l), exp[1]),
                                  ("TV", [tv_l], [exp[2]])):
            w = weights[term]
            for j, (m, r) in enumerate(zip(mine, right)):
                label = "tv_l" if term == "TV" else f"{term} term {j}"
                m = _scalar(name, m, f"{described} ({label})")
                wrong = []
                if w != 0:
                    raw = r.detach() / w  # the unweighted term
                    if w != 1:
                        wrong.append((raw, f"the {term} term is not multiplied by its weight "
                                           f"(settings.{term.lower()}_weight = {w:g})"))
                    wrong += [(raw * v, f"the {term} term is multiplied by the {other} weight ({v:g}); "
                                        f"use settings.{term.lower()}_weight")
                              for other, v in weights.items() if other != term and v != w]
                _compare(name, m, r.detach(), f"{described} ({label})", wrong=wrong)
        l = _scalar(name, l, described + " (l)")
        parts = {"content": sum(e.detach() for e in exp[0]), "style": sum(e.detach() for e in exp[1]),
                 "TV": exp[2].detach()}
        missing = [(exp[3].detach() - parts[t], f"the total l leaves out the {t} term(s)") for t in parts
                   if parts[t].abs() > 0]
        _compare(name, l, exp[3].detach(), described + " (l)", wrong=missing)
        _needs_grad(name, l, described, "the image X and the features")
    print(f"OK: {name} agrees with d2lstyle.compute_loss on {len(weight_sets)} sets of weights and layers")


# ----------------------------------------------------------------------------- AdaIN (05)

def adain(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Reference of notebook 05's AdaIN (Huang & Belongie 2017): x (n, c, h, w) with y's per-channel
    mean and standard deviation, sigma(y) * (x - mu(x)) / sigma(x) + mu(y), where sigma is
    sqrt(var + eps) with the population variance (:data:`STD_CONVENTION`)."""
    mu_x, sigma_x = _channel_mean_std(x, eps)
    mu_y, sigma_y = _channel_mean_std(y, eps)
    return sigma_y * (x - mu_x) / sigma_x + mu_y


def _channel_mean_std(x: torch.Tensor, eps: float):
    """Each channel's mean and sigma over positions, (n, c, 1, 1) each (:data:`STD_CONVENTION`)."""
    return x.mean((2, 3), keepdim=True), torch.sqrt(x.var((2, 3), keepdim=True, correction=0) + eps)


def check_adain(fn: Callable) -> None:
    """``fn(x, y)``: AdaIN of content features x (n, c, h, w) and style features y (n, c, h', w')."""
    name = _name(fn)
    cases = [((1, 3, 4, 5), (1, 3, 6, 6), torch.float32), ((2, 4, 5, 5), (2, 4, 3, 7), torch.float32),
             ((1, 2, 6, 4), (1, 2, 4, 4), torch.float64)]
    for k, (sx, sy, dtype) in enumerate(cases):
        x = (_randn(sx, 2 * k, dtype) * 2 + 1).requires_grad_(True)
        y = _randn(sy, 2 * k + 1, dtype) * 3 - 2
        before = [x.detach().clone(), y.clone()]
        described = f"x of shape {sx}, y of shape {sy}, {str(dtype).replace('torch.', '')}"
        got = _call(fn, name, x, y, described=described)
        _unchanged(name, before, [x, y], described)
        xd = x.detach()
        s = lambda t: _channel_mean_std(t, 1e-5)[1]  # noqa: E731
        m = lambda t: t.mean((2, 3), keepdim=True)  # noqa: E731
        unbiased = lambda t: t.std((2, 3), keepdim=True) + 1e-5  # noqa: E731
        _compare(name, got, adain(xd, y), described,
                 shape_hint="the result has the content's shape (n, c, h, w)",
                 wrong=[(unbiased(y) * (xd - m(xd)) / unbiased(xd) + m(y),
                         "sigma divides by h·w − 1 (unbiased std) and adds eps outside the root; use "
                         "the population one, sqrt(var(correction=0) + eps), as instance "
                         "normalisation does"),
                        (s(xd) * (y - m(y)) / s(y) + m(xd) if sx == sy else torch.empty(0),
                         "x and y are swapped: the content x takes the style y's statistics"),
                        (s(y) * xd / s(xd) + m(y), "centre x first: (x - mean(x)) / std(x)"),
                        (s(y) * (xd - m(xd)) / s(xd), "add the style's mean back: ... + mean(y)"),
                        ((y.std() + 1e-5) * (xd - xd.mean()) / (xd.std() + 1e-5) + y.mean(),
                         "the statistics are per channel: mean and std over (2, 3), keepdim=True")])
        _needs_grad(name, _as_tensor(got, name, described), described, "x")
    _ok(name, "AdaIN (per-channel mean and std over positions)", [c[0] for c in cases])


# ----------------------------------------------------------------------------- the loop (05)

# The loop exercise's settings: the "d2l" preset (Adam, StepLR) with layers that exist in the
# 9-module _small_net (indices 1, 3, 6, 8 are relu1_1, relu1_2, relu2_1, relu2_2 of VGG19's names),
# a few dozen steps, a decay every 10 steps so that three decays happen, and weights that give
# each term of the loss a gradient of similar size on the small network's tiny features.
LOOP_SHAPE = (1, 3, 12, 16)


def loop_settings():
    """The :class:`d2lstyle.Preset` that :func:`check_train_loop` passes to the learner's loop."""
    from ..presets import PRESETS

    return PRESETS["d2l"].with_overrides(
        content_layers=["relu2_1"], style_layers=["relu1_1", "relu1_2", "relu2_2"],
        content_weight=1e3, style_weight=1e3, tv_weight=1.0, lr=0.05, num_steps=30,
        lr_decay_step=10, lr_decay=0.5)


def book_train(content_X: torch.Tensor, style_X: torch.Tensor, net, settings) -> torch.Tensor:
    """The reference of the loop exercise: the chapter's ``get_contents``, ``get_styles``,
    ``get_inits`` and ``train`` (D2L 14.12) in one function, with the layers, weights and
    schedule of ``settings`` instead of the book's globals. Images (1, 3, h, w) in the book's
    normalised space; returns the synthesised image (1, 3, h, w), detached."""
    from .. import book
    from ..vgg import layer_index

    content_layers = [layer_index(layer) for layer in settings.content_layers]
    style_layers = [layer_index(layer) for layer in settings.style_layers]
    contents_Y, _ = book.extract_features(content_X, content_layers, style_layers, net)
    _, styles_Y = book.extract_features(style_X, content_layers, style_layers, net)
    gen_img = book.SynthesizedImage(content_X.shape, content_X.dtype)
    gen_img.weight.data.copy_(content_X.data)
    X = gen_img()
    styles_Y_gram = [book.gram(Y) for Y in styles_Y]
    trainer = torch.optim.Adam(gen_img.parameters(), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(trainer, settings.lr_decay_step, settings.lr_decay)
    for epoch in range(settings.num_steps):
        trainer.zero_grad()
        contents_Y_hat, styles_Y_hat = book.extract_features(X, content_layers, style_layers, net)
        contents_l = [book.content_loss(Y_hat, Y) * settings.content_weight
                      for Y_hat, Y in zip(contents_Y_hat, contents_Y)]
        styles_l = [book.style_loss(Y_hat, Y) * settings.style_weight
                    for Y_hat, Y in zip(styles_Y_hat, styles_Y_gram)]
        l = sum(styles_l + contents_l + [book.tv_loss(X) * settings.tv_weight])
        l.backward()
        trainer.step()
        scheduler.step()
    return X.detach()


class _LoopRecorder:
    """Watches a training loop from outside: every forward pass of ``net`` (its input, and
    whether a gradient later reached its outputs) and every optimiser step (the optimiser, its
    parameters, the learning rate, the image and its gradient just before the update)."""

    def __init__(self, net, image_shape):
        self.net, self.image_shape = net, tuple(image_shape)
        self.passes: list[dict] = []
        self.steps: list[dict] = []
        self.handles = []

    def __enter__(self):
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        self.handles.append(self.net[0].register_forward_pre_hook(self._pass))
        for module in self.net:
            self.handles.append(module.register_forward_hook(self._output))
        self.handles.append(register_optimizer_step_pre_hook(self._step))
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False

    def _pass(self, module, inputs):
        X = inputs[0]
        self.passes.append({"input": X.detach().clone(), "requires_grad": X.requires_grad,
                            "step": len(self.steps), "grad_at": set()})

    def _output(self, module, inputs, output):
        if isinstance(output, torch.Tensor) and output.requires_grad and self.passes:
            record = self.passes[-1]
            output.register_hook(lambda grad: record["grad_at"].add(len(self.steps)))

    def _step(self, optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        images = [p for p in params if tuple(p.shape) == self.image_shape]
        image = images[0] if images else None
        self.steps.append({
            "optimizer": optimizer, "params": params, "lr": optimizer.param_groups[0]["lr"],
            "X": None if image is None else image.detach().clone(),
            "grad": None if image is None or image.grad is None else image.grad.detach().clone()})


def _loop_terms(X, content_X, style_X, net, settings, *, content_from=None, style_from=None,
                content_target=None, style_target=None):
    """The gradient of the loop's loss with respect to ``X``; the ``*_from`` and ``*_target``
    images replace X's features or the targets' images, to recognise a known mistake."""
    from ..features import extract_features
    from ..objective import compute_loss
    from ..losses import gram

    layers = settings.content_layers, settings.style_layers
    X = X.detach().clone().requires_grad_(True)
    with torch.no_grad():
        contents_Y, _ = extract_features(content_X if content_target is None else content_target,
                                         net, *layers)
        _, styles_Y = extract_features(style_X if style_target is None else style_target, net, *layers)
        styles_Y_gram = [gram(Y) for Y in styles_Y]
    contents_Y_hat, styles_Y_hat = extract_features(X, net, *layers)
    if content_from is not None:
        contents_Y_hat, _ = extract_features(content_from, net, *layers)
    if style_from is not None:
        _, styles_Y_hat = extract_features(style_from, net, *layers)
    l = compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings)[3]
    (grad,) = torch.autograd.grad(l, X)
    return grad


def _which_image(X, images: dict) -> str:
    for label, image in images.items():
        if tuple(X.shape) == tuple(image.shape) and torch.equal(X, image):
            return label
    return "another tensor"


def _schedule_message(name, lrs, settings) -> Optional[str]:
    """What is wrong with the learning rates ``lrs`` seen at each optimiser step, or None.

    The book's schedule: ``StepLR(trainer, lr_decay_epoch, 0.8)`` stepped once per step, after
    ``trainer.step()``, so that step t runs at ``lr * gamma ** (t // every)``.
    """
    lr, gamma, every = settings.lr, settings.lr_decay, settings.lr_decay_step

    def follows(schedule):  # schedule(t): the learning rate at step t
        return all(abs(a - schedule(t)) <= 1e-12 * lr for t, a in enumerate(lrs))

    expected = [lr * gamma ** (t // every) for t in range(len(lrs))]
    if follows(lambda t: expected[t]):
        return None
    how = (f"StepLR(trainer, {every}, {gamma:g}) multiplies the learning rate by {gamma:g} once "
           f"every {every} calls of scheduler.step(); call it once per step (the book's 'epoch'), "
           "right after trainer.step()")
    first = next(t for t, (a, b) in enumerate(zip(lrs, expected)) if abs(a - b) > 1e-12 * lr)
    if first == 0:
        return (f"{name}: the learning rate at the first step is {lrs[0]:g}, expected "
                f"settings.lr = {lr:g}: create the optimiser with lr=settings.lr")
    if follows(lambda t: lr):
        return (f"{name}: the learning rate stays at {lr:g} for all {len(lrs)} steps, expected "
                f"{expected[every]:g} from step {every} on: the scheduler is never stepped, or too "
                f"rarely (StepLR counts its own calls), or not created. {how}")
    if follows(lambda t: lr * gamma ** ((t + 1) // every)):
        return (f"{name}: the learning rate drops one step early (to {lrs[first]:g} at step {first}, "
                f"expected at step {first + 1}): scheduler.step() is called before trainer.step(). "
                f"{how}")
    if follows(lambda t: lr * gamma ** t):
        return (f"{name}: the learning rate is multiplied by {gamma:g} at every step, expected "
                f"once every {every} steps: StepLR's step_size is settings.lr_decay_step = {every}. {how}")
    return (f"{name}: at step {first} the learning rate is {lrs[first]:g}, expected {expected[first]:g} "
            f"(settings.lr = {lr:g}, times {gamma:g} every {every} steps). {how}")


class _OneThread:
    """Run the block with one torch thread: the loop check's tensors are tiny, and on a busy
    machine two threads made its hundreds of small convolutions 100 times slower."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
        return False


def check_train_loop(fn: Callable) -> None:
    """``fn(content_X, style_X, net, settings)``: the book's training loop (D2L 14.12), with its
    set-up (``get_contents``, ``get_styles``, ``get_inits``): the targets computed once as
    constants, the synthesised image started from the content image and optimised by Adam with
    a StepLR schedule; returns the image (1, 3, h, w).

    Run in float64 on a 9-module network whose weights require gradients, as the book's do,
    with :func:`loop_settings`, and watched from outside (:class:`_LoopRecorder`): which tensors
    the optimiser updates, the learning rate at each step, the image's gradient at each step
    (compared with the gradient of the book's loss at that image), and where gradients flow.
    The result is compared with :func:`book_train`'s.
    """
    with _OneThread(), torch.random.fork_rng(devices=[]):  # SynthesizedImage draws torch.rand
        _check_train_loop(fn)


def _check_train_loop(fn: Callable) -> None:
    import warnings

    name = _name(fn)
    settings = loop_settings()
    net = _small_net(7).double().requires_grad_(True)  # like the book's net: not frozen
    weights = [p.detach().clone() for p in net.parameters()]
    content_X = _randn(LOOP_SHAPE, 70, torch.float64)
    style_X = _randn(LOOP_SHAPE, 71, torch.float64)
    before = [content_X.clone(), style_X.clone()]
    images = {"the content image content_X": content_X, "the style image style_X": style_X}
    described = (f"content_X and style_X of shape {LOOP_SHAPE}, float64, a 9-module network, "
                 f"{settings.num_steps} steps")
    with warnings.catch_warnings(), _LoopRecorder(net, LOOP_SHAPE) as seen:
        warnings.simplefilter("ignore")  # e.g. PyTorch's own warning about the scheduler's order
        try:
            got = fn(content_X, style_X, net, settings)
        except NotImplementedError:
            raise NotImplementedError(
                f"{name} is not written yet: replace `raise NotImplementedError()` with your code, "
                "then run the cell again") from None
        except Exception as error:
            step = len(seen.steps)
            text = str(error)
            if "backward through the graph a second time" in text:
                raise AssertionError(
                    f"{name}: l.backward() failed at step {step} with 'Trying to backward through the "
                    "graph a second time': the targets still carry the graph that computed them, and the "
                    "loss sends a gradient into them. The targets are constants: compute contents_Y and "
                    "styles_Y_gram once, before the loop, under torch.no_grad() (or .detach() them), and "
                    "use content_loss and style_loss, which detach their targets") from None
            if "does not require grad" in text:
                raise AssertionError(
                    f"{name}: l.backward() at step {step} found nothing to differentiate: the image must "
                    "require a gradient (X = content_X.clone().requires_grad_(True), or the book's "
                    "SynthesizedImage) and the features in the loop must be computed from it") from None
            raise AssertionError(f"{name} crashed on input {described} at step {step}: "
                                 f"{type(error).__name__}: {error}") from None
    _unchanged(name, before, [content_X, style_X], described)
    steps = seen.steps
    if not steps:
        raise AssertionError(f"{name}: no optimiser step was taken ({described}): call "
                             "trainer.step() once per step of the loop")
    # (e) what the optimiser updates
    ids = {id(p) for p in net.parameters()}
    if any(id(p) in ids for p in steps[0]["params"]):
        raise AssertionError(
            f"{name}: the optimiser updates the network's weights (net.parameters()) instead of the "
            "image: in style transfer the network is fixed and the image is the only parameter. Give "
            "the optimiser the image: torch.optim.Adam([X], lr=settings.lr) with "
            "X = content_X.clone().requires_grad_(True) (the book: gen_img.parameters())")
    if steps[0]["X"] is None:
        raise AssertionError(
            f"{name}: the optimiser holds no tensor of the image's shape {LOOP_SHAPE}: give it the "
            "synthesised image, torch.optim.Adam([X], lr=settings.lr)")
    for w, p in zip(weights, net.parameters()):
        if not torch.equal(w, p.detach()):
            raise AssertionError(f"{name}: the network's weights changed ({described}): only the "
                                 "image may change; do not update or modify net")
    if len({id(s["optimizer"]) for s in steps}) > 1:
        raise AssertionError(
            f"{name}: a new optimiser is created during the loop ({len({id(s['optimizer']) for s in steps})} "
            "optimisers): Adam keeps running averages of the gradient across steps; create the "
            "optimiser (and the scheduler) once, before the loop")
    if len(steps) != settings.num_steps:
        raise AssertionError(f"{name}: {len(steps)} optimiser steps, expected settings.num_steps = "
                             f"{settings.num_steps}: one trainer.step() per step of the loop")
    if not isinstance(steps[0]["optimizer"], torch.optim.Adam):
        raise AssertionError(f"{name}: the optimiser is {type(steps[0]['optimizer']).__name__}; the "
                             "book (and settings.optimizer) use torch.optim.Adam")
    if not torch.equal(steps[0]["X"], content_X):
        raise AssertionError(f"{name}: the image at the first step is not the content image: start "
                             "from a copy of content_X, as the book's get_inits does")
    # (c) the schedule
    message = _schedule_message(name, [s["lr"] for s in steps], settings)
    if message:
        raise AssertionError(message)
    # (a), (d): the image's gradient at each step, against the book's loss at that image
    tol = 1e-8
    close = lambda a, b: a.shape == b.shape and _rel_error(a, b) <= tol  # noqa: E731
    for t, step in enumerate(steps):
        g = step["grad"]
        if g is None:
            raise AssertionError(f"{name}: at step {t} the image has no gradient when trainer.step() "
                                 "runs: call l.backward() before trainer.step()")
        reference = _loop_terms(step["X"], content_X, style_X, net, settings)
        if close(g, reference):
            continue
        where = f"at step {t}"
        if g.abs().max() == 0:
            raise AssertionError(f"{name}: {where} the gradient is zero when trainer.step() runs: "
                                 "zero_grad() comes between l.backward() and trainer.step(); call "
                                 "trainer.zero_grad() at the start of each step, before the forward pass")
        if t > 0 and close(g, reference + steps[t - 1]["grad"]):
            raise AssertionError(
                f"{name}: {where} the image's gradient is this step's plus the earlier steps' "
                "(gradients accumulate): PyTorch adds each backward() into X.grad, so call "
                "trainer.zero_grad() at the start of every step, before l.backward()")
        loop_passes = [p for p in seen.passes if p["step"] == t]
        sources = sorted({_which_image(p["input"], images) for p in loop_passes if not p["requires_grad"]})
        from_content = dict(content_from=content_X)
        for kwargs, message in [
                (dict(content_from=content_X),
                 "the content term sends no gradient to the image: the content features Y_hat are "
                 "computed from the content image, not from the synthesised image X"),
                (dict(style_from=content_X),
                 "the style features Y_hat are computed from the content image, not from the "
                 "synthesised image X"),
                (dict(from_content, style_from=content_X),
                 "the content and style features are computed from the content image, not from the "
                 "synthesised image X: only the TV term moves the image"),
                (dict(content_target=style_X),
                 "the content target contents_Y is computed from the style image; compute it from "
                 "the content image, content_X"),
                (dict(style_target=content_X),
                 "the style targets are computed from the content image; compute the Gram matrices "
                 "from the style image, style_X"),
                (dict(content_target=style_X, style_target=content_X),
                 "the content and style targets are swapped: contents_Y from content_X, styles_Y "
                 "(and their Gram matrices) from style_X")]:
            if close(g, _loop_terms(step["X"], content_X, style_X, net, settings, **kwargs)):
                also = f" (in the loop, {', '.join(sources)} goes through the network)" if sources else ""
                raise AssertionError(
                    f"{name}: {where} {message}{also}. Inside the loop, call extract_features(X, ...) on "
                    "the image the optimiser updates; the content and style images are used once, "
                    "before the loop, for the targets")
        earlier = [p for p in seen.passes if t in p["grad_at"] and p["step"] < t]
        if earlier:
            raise AssertionError(
                f"{name}: {where} the gradient flows into features computed at an earlier step "
                "(the targets): the targets are constants; compute them once before the loop under "
                "torch.no_grad() (or .detach() them), and use content_loss and style_loss")
        raise AssertionError(
            f"{name}: {where} the image's gradient differs from that of the book's loss at the same "
            f"image (relative difference {_rel_error(g, reference):.2g}): compute the loss with "
            "compute_loss(X, contents_Y_hat, styles_Y_hat, contents_Y, styles_Y_gram, settings) on the "
            "features of X at settings.content_layers and settings.style_layers")
    # (b) no gradient may reach the targets, even where the image's gradient is right
    for p in seen.passes:
        if not p["requires_grad"] and p["grad_at"]:
            raise AssertionError(
                f"{name}: the gradient flows into the features of "
                f"{_which_image(p['input'], images)} (the targets): the targets are constants; compute "
                "them once, before the loop, under torch.no_grad() (or .detach() them), and use "
                "content_loss and style_loss, which detach their targets")
    # the result
    if isinstance(got, torch.nn.Module):
        raise AssertionError(f"{name} returned a {type(got).__name__}; return the image tensor "
                             "(1, 3, h, w), e.g. gen_img() or X.detach()")
    got = _as_tensor(got, name, described, "the synthesised image, a (1, 3, h, w) tensor")
    expected = book_train(content_X, style_X, _small_net(7).double().requires_grad_(True), settings)
    if tuple(got.shape) != tuple(expected.shape):
        raise AssertionError(f"{name} returned shape {tuple(got.shape)}; expected the image's "
                             f"{tuple(expected.shape)}")
    if torch.equal(got.detach(), content_X):
        raise AssertionError(f"{name} returned the content image: return the synthesised image X "
                             "after the loop")
    if not close(got.detach(), expected):
        if close(got.detach(), steps[-1]["X"]):
            raise AssertionError(f"{name} returned the image before the last update: return X after "
                                 "the loop")
        raise AssertionError(
            f"{name}: every step's gradient and learning rate are right, but the result differs from "
            f"the book's loop (relative difference {_rel_error(got.detach(), expected):.2g}): use "
            "torch.optim.Adam with its default betas and eps, and return the image after the last step")
    print(f"OK: {name} agrees with the book's loop over {settings.num_steps} steps (Adam, StepLR every "
          f"{settings.lr_decay_step} steps; gradients, learning rates and result checked at each step)")

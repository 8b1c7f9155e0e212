"""Good by default, in a minute (issue 14): the evidence for the default, measured in one process.

    python scripts/good_by_default.py                 # both parts; about 20 minutes on 2 CPU cores
    python scripts/good_by_default.py default         # part 1 only
    python scripts/good_by_default.py cap             # part 2 only
    python scripts/good_by_default.py --smoke --out /tmp/g   # tiny sizes, random weights: a check

Part 1 (``default``). On three redistributable pairs (figures/README.md), the default of
``d2lstyle CONTENT STYLE`` (preset 'gatys', 200 plain L-BFGS steps, ``fast=False``, 320 px)
against the candidate default: the same with ``fast=True`` (the pyramid, coarse levels ended by
their loss curve, and the line search) and :data:`CANDIDATE_FULL_SIZE_FRACTION` of ``num_steps``
(60 evaluations) at the full size. One after the other for each pair, in alternating order, so
that both see the same machine. For each: seconds, their ratio, and the
'gatys' objective (float32) of both results, evaluated by the same :class:`d2lstyle.Objective`.
Saves ``figures/good_by_default.jpg`` (content | style | before | now).

Part 2 (``cap``). The book's loop at 150x225 for 200 steps (its final float32 loss is the target),
then ``transfer(preset="d2l", fast=True, stop_at_loss=target)`` with ``num_steps`` 200 and 1000,
each twice in the order 200, 1000, 1000, 200: with coarse levels that end when converged, the
generous cap must not be slower.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from d2lstyle import Objective, get_preset, transfer, vgg19
import d2lstyle.speed.plan as plan
from d2lstyle.book import book_loop
from d2lstyle.images import offline_demo_images
from d2lstyle.style_transfer import image_shapes

ROOT = Path(__file__).resolve().parents[1]
# The candidate's full-size budget as a fraction of num_steps (fast=True has 0.5): 60 of the
# 200 evaluations, so that it could take at most 40% of the time of 200 plain steps.
CANDIDATE_FULL_SIZE_FRACTION = 0.3
sys.path.insert(0, str(ROOT / "scripts"))
from make_figures import grid, pairs, save  # noqa: E402  (the figures' own helpers and pairs)


def gatys_objective(net, content, style, X, size) -> float:
    """The 'gatys' preset's total loss (float32) of the image X (1, 3, h, w) at ``size``."""
    settings = get_preset("gatys").with_overrides(size=size)
    content_shape, style_shapes = image_shapes(content, [style], settings)
    objective = Objective(net, content, style, content_shape, style_shapes[0], settings,
                          torch.device("cpu"))
    return objective.float32_loss(X)


def timed(function):
    """``(result, wall seconds)``: part 2's timer; part 1 also counts CPU seconds (:func:`cpu_timed`)."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def cpu_timed(function):
    """``(result, wall seconds, CPU seconds of this process)``: on a shared machine the CPU
    seconds depend far less on what else runs than the wall-clock seconds do."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def default_part(net, out: Path, smoke: bool) -> None:
    size = 48 if smoke else 320
    before = dict(fast=False, num_steps=4) if smoke else dict(fast=False)
    now = dict(fast=True, num_steps=8) if smoke else dict(fast=True)
    rows, ratios = [], []
    print(f"Part 1: 'gatys' at {size} px: before (fast=False, 200 plain L-BFGS steps) against "
          "now (the candidate: fast=True)", flush=True)
    for number, (name, content, style) in enumerate(pairs()):
        runs = {}
        for label in (("before", "now") if number % 2 == 0 else ("now", "before")):
            kwargs = before if label == "before" else now
            runs[label] = cpu_timed(lambda: transfer(content, style, net=net, size=size,
                                                     progress=False, **kwargs))
        (old, old_s, old_cpu), (new, new_s, new_cpu) = runs["before"], runs["now"]
        old_loss = gatys_objective(net, content, style, old.tensor, size)
        new_loss = gatys_objective(net, content, style, new.tensor, size)
        coarse = sum(1 for r in new.history if tuple(r["shape"]) != tuple(new.tensor.shape[-2:]))
        ratios.append((new_s / old_s, new_cpu / old_cpu))
        print(f"  {name}: before {old_s:.1f} s, {old_cpu:.1f} CPU s ({len(old.history)} steps), "
              f"loss {old_loss:.5g}; now {new_s:.1f} s, {new_cpu:.1f} CPU s ({coarse} coarse + "
              f"{len(new.history) - coarse} full-size evaluations), loss {new_loss:.5g}; "
              f"time ratio {new_s / old_s:.2f} (CPU {new_cpu / old_cpu:.2f}), loss ratio "
              f"{new_loss / old_loss:.3f}", flush=True)
        rows.append([content, style, old.image, new.image])
    print("  time ratios now / before (wall, CPU): "
          + ", ".join(f"({wall:.2f}, {cpu:.2f})" for wall, cpu in ratios), flush=True)
    save(grid(rows, 48 if smoke else 220), out, "good_by_default.jpg")


def cap_part(net, smoke: bool) -> None:
    content, style = offline_demo_images()
    shape, steps = ((32, 48), 8) if smoke else ((150, 225), 200)
    print(f"Part 2: time to the book loop's {steps}-step loss at {shape[0]}x{shape[1]}, "
          "fast=True with stop_at_loss, num_steps 200 against 1000", flush=True)
    (X, losses), book_s = timed(lambda: book_loop(net, content, style, shape, steps))
    settings = get_preset("d2l").with_overrides(image_shape=shape)
    target = Objective(net, content, style, shape, shape, settings,
                       torch.device("cpu")).float32_loss(X)
    print(f"  book loop: {book_s:.1f} s, loss {target:.6g}", flush=True)
    seconds = {200: [], 1000: []}
    for cap in (200, 1000, 1000, 200):
        result, s = timed(lambda: transfer(content, style, preset="d2l", net=net,
                                           image_shape=shape, num_steps=cap, fast=True,
                                           stop_at_loss=target, progress=False))
        coarse = sum(1 for r in result.history if tuple(r["shape"]) != tuple(shape))
        seconds[cap].append(s)
        print(f"  num_steps={cap}: {s:.1f} s, {coarse} coarse + {len(result.history) - coarse} "
              f"full-size evaluations, {result.stopped} ({book_s / s:.1f}x the book loop)",
              flush=True)
    ratio = sum(seconds[1000]) / sum(seconds[200])
    print(f"  num_steps=1000 / num_steps=200, total of two runs each: {ratio:.3f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", choices=["default", "cap"], default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "figures")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, random weights")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{torch.backends.cpu.get_cpu_capability()}", flush=True)
    torch.manual_seed(0)
    net = vgg19(None if args.smoke else "original")
    plan.FAST_STEP_FRACTION = CANDIDATE_FULL_SIZE_FRACTION  # both parts measure the candidate
    for part in args.parts or ["default", "cap"]:
        start = time.perf_counter()
        default_part(net, args.out, args.smoke) if part == "default" else cap_part(net, args.smoke)
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

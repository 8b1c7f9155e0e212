"""The benchmark harness behind ``python -m d2lstyle.benchmark``: the book's loop against
``transfer(fast=True)``, in one process.

On the same network (the original weights) and the same images (the offline demo pair), for each
size it runs

- the book's loop (D2L 14.12, :func:`d2lstyle.book.book_loop`: Adam, lr 0.3, StepLR(50, 0.8), content 1 / style
  1e4 / TV 10, initialised with the content image, float32), for the given number of steps;
- ``transfer(..., preset="d2l", fast=True, stop_at_loss=<the book's final loss>)``;

and prints seconds, steps, the final image's loss re-evaluated in float32 by the book's
definition, the speed-up and peak memory. Then the per-step time of the 'd2l' preset without
``fast`` against a bare VGG19 forward and backward at the same size (the floor), and the peak
memory of one step at 300x450, 512 and 1024 px (longest side, the book's 2:3 aspect). Last, the
feed-forward stylizer (:mod:`d2lstyle.feedforward`): one ``stylize`` call (pre-processing, one
forward pass, post-processing) at 256, 512 and 1024 px, next to one step of the optimisation at
that size and the 200 steps of the 'gatys' preset. The network is the shipped architecture with
random weights: its cost does not depend on the values of its weights.

Peak memory on the CPU is the peak resident set size of the process during the run minus the
level just before it (sampled every 2 ms from ``/proc/self/statm``, after returning freed heap to
the system with ``malloc_trim``): what the run added to the process, allocator caches included.
On CUDA it is ``torch.cuda.max_memory_allocated`` minus the memory allocated before the run.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import threading
import time
from typing import Optional, Sequence

import torch

from ..book import book_loop, book_loss
from ..devices import try_device
from ..images import OFFLINE_DEMO, offline_demo_images
from ..memory import bytes_per_pixel
from ..presets import get_preset
from ..speed.plan import autocast_dtype
from ..style_transfer import transfer
from ..vgg import truncate, vgg19

DEFAULT_SIZES = "150x225:200,300x450:500"
MEMORY_SIZES = ((300, 450), (341, 512), (683, 1024))
FEEDFORWARD_SIZES = ((171, 256), (341, 512), (683, 1024))
QUICK_SIZES = "32x48:8"
QUICK_MEMORY_SIZES = ((32, 48), (48, 72))

# ----------------------------------------------------------------------------- measuring

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Context manager: ``self.bytes`` is the peak memory the block added (see the module doc)."""

    def __init__(self, device: torch.device, interval: float = 0.002):
        self.device, self.interval, self.bytes = device, interval, 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._base = self._peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _sample(self):
        while not self._done.wait(self.interval):
            self._peak = max(self._peak, self._rss())

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._base
            return False
        self._done.set()
        self._thread.join()
        self.bytes = max(self._peak, self._rss()) - self._base
        return False


def float32_book_loss(net, content_img, style_img, image_shape, X, device) -> float:
    """The book's total loss (:func:`d2lstyle.book.book_loss`) at the image ``X``, float32."""
    with torch.no_grad():
        return float(book_loss(net, content_img, style_img, X.to(device, torch.float32)))


def bare_pass_seconds(net, X, device, amp_dtype=None) -> float:
    """Seconds of one bare forward and backward of ``X`` (requires grad) through ``net``."""
    _sync(device)
    t = time.perf_counter()
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        Y = net(X)
    Y.float().sum().backward()
    _sync(device)
    return time.perf_counter() - t


def bare_step_seconds(net, image_shape, device, reps: int, amp_dtype=None) -> float:
    """Median seconds of a bare forward and backward through ``net`` at ``image_shape``."""
    X = torch.randn(1, 3, *image_shape, device=device, requires_grad=True)
    times = [bare_pass_seconds(net, X, device, amp_dtype) for _ in range(reps + 1)]
    return statistics.median(times[1:])  # the first one warms up


def step_against_floor(net, content, style, image_shape, device, reps: int) -> tuple[float, float, float]:
    """Per-step seconds of ``transfer(preset="d2l")`` without fast, and of the floor, interleaved.

    Between two steps of the preset's own loop (from its ``callback``), one bare forward and
    backward through ``net`` at the same size is timed, and taken out of that step's time. Both
    thus run under the same conditions, which matters on a shared machine whose speed drifts
    by 20% within a minute. Returns the medians ``(step, bare, step / bare)`` over ``reps``
    steps, the ratio being the median of the per-step ratios; the first step warms up.
    """
    X = torch.randn(1, 3, *image_shape, device=device, requires_grad=True)
    bare = []

    def callback(step, image, record):
        bare.append(bare_pass_seconds(net, X, device))

    result = transfer(content, style, preset="d2l", net=net, image_shape=image_shape,
                      num_steps=reps + 2, device=device, progress=False, callback=callback)
    times = [r["time"] for r in result.history]
    steps = [b - a - floor for a, b, floor in zip(times, times[1:], bare)][1:]
    bare = bare[1 : len(steps) + 1]
    return (statistics.median(steps), statistics.median(bare),
            statistics.median(step / floor for step, floor in zip(steps, bare)))


def stylize_seconds(model, image_shape, device, reps: int) -> float:
    """Median seconds of :func:`d2lstyle.feedforward.stylize` on a photo of ``image_shape``
    (the offline demo's content, resized), pre- and post-processing included; the first call
    warms up."""
    from ..feedforward import stylize

    photo = offline_demo_images()[0].resize(image_shape[::-1])
    times = []
    for _ in range(reps + 1):
        _sync(device)
        t = time.perf_counter()
        stylize(photo, model, device=device)
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def feedforward_table(net, device, sizes, reps: int, markdown: bool) -> str:
    """Feed-forward stylising against the optimisation, at each of ``sizes``."""
    from ..feedforward import TransformNet

    steps = get_preset("gatys").num_steps
    torch.manual_seed(0)
    model = TransformNet().eval()  # the shipped architecture; random weights cost the same
    rows = []
    for shape in sizes:
        forward = stylize_seconds(model, shape, device, reps)
        step = bare_step_seconds(net, shape, device, 1)
        rows.append([f"{shape[0]}x{shape[1]}", f"{forward:.3f}", f"{step:.3f}",
                     f"{steps * step:.0f}", f"{steps * step / forward:.0f}x"])
    return table(["size", "feed-forward stylize (s)", "one optimisation step (s)",
                  f"{steps} steps (s)", "ratio"], rows, markdown)


def parse_sizes(text: str) -> list[tuple[tuple[int, int], int]]:
    """``"150x225:200,300x450:500"`` -> ``[((150, 225), 200), ((300, 450), 500)]``."""
    sizes = []
    for item in text.split(","):
        try:
            shape, steps = item.strip().split(":")
            h, w = (int(v) for v in shape.lower().split("x"))
            steps = int(steps)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad size {item!r}: expected HxW:STEPS such as 150x225:200") from None
        if min(h, w, steps) < 1:
            raise argparse.ArgumentTypeError(f"bad size {item!r}: sides and steps must be >= 1")
        sizes.append(((h, w), steps))
    return sizes


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


# ----------------------------------------------------------------------------- output

def table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row) for row in [header, *rows])


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def run(sizes, device: torch.device, weights, memory_sizes, reps: int, markdown: bool,
        out=None, feedforward_sizes=FEEDFORWARD_SIZES) -> list[dict]:
    """Run everything and print the tables; returns the rows of the first table as dicts."""
    def say(text=""):  # sys.stdout looked up at each call: tests and callers may replace it
        print(text, file=out or sys.stdout, flush=True)

    torch.manual_seed(0)
    net = truncate(vgg19(weights), get_preset("d2l").style_layers + get_preset("d2l").content_layers)
    net = net.to(device)
    content, style = offline_demo_images()
    amp = autocast_dtype(device)
    say(f"d2lstyle benchmark on {device}: {device_name(device)}; torch {torch.__version__}; "
        f"weights {weights or 'random'}; images {OFFLINE_DEMO[0]} / {OFFLINE_DEMO[1]}; "
        f"network precision with fast=True: {amp or torch.float32}")
    say()

    results, rows = [], []
    for shape, steps in sizes:
        size = f"{shape[0]}x{shape[1]}"
        with PeakMemory(device) as memory:
            _sync(device)
            t = time.perf_counter()
            X, _ = book_loop(net, content, style, shape, steps, device)
            _sync(device)
            book_seconds = time.perf_counter() - t
        book_peak = memory.bytes
        target = float32_book_loss(net, content, style, shape, X, device)
        with PeakMemory(device) as memory:
            _sync(device)
            t = time.perf_counter()
            fast = transfer(content, style, preset="d2l", net=net, image_shape=shape,
                            num_steps=steps, fast=True, stop_at_loss=target, device=device,
                            progress=False)
            _sync(device)
            fast_seconds = time.perf_counter() - t
        fast_peak = memory.bytes
        fast_loss = float32_book_loss(net, content, style, shape, fast.tensor, device)
        coarse = sum(1 for r in fast.history if tuple(r["shape"]) != tuple(shape))
        fine = len(fast.history) - coarse
        reached = fast_loss <= target
        results.append({"size": shape, "book_seconds": book_seconds, "book_steps": steps,
                        "book_loss": target, "fast_seconds": fast_seconds,
                        "fast_steps": (coarse, fine), "fast_loss": fast_loss,
                        "speedup": book_seconds / fast_seconds, "reached": reached})
        rows.append(["book loop (Adam, float32)", size, str(steps), f"{book_seconds:.1f}",
                     f"{target:.6g}", "1.0x", mib(book_peak)])
        rows.append(["transfer(preset='d2l', fast=True)", size,
                     f"{coarse} + {fine}" if coarse else str(fine), f"{fast_seconds:.1f}",
                     f"{fast_loss:.6g}" + ("" if reached else " (target not reached)"),
                     f"{book_seconds / fast_seconds:.1f}x", mib(fast_peak)])
        say(f"  {size}: book {book_seconds:.1f} s -> loss {target:.6g}; fast {fast_seconds:.1f} s, "
            f"{coarse} coarse + {fine} full-size steps -> loss {fast_loss:.6g} ({fast.stopped})")
    say()
    say("Time to the book's loss (steps of fast=True: coarse levels + full size; loss: the final "
        "image's, float32, book's definition):")
    say(table(["run", "size", "steps", "seconds", "final loss", "speed-up", "peak memory"], rows,
              markdown))
    say()

    rows = []
    for shape, _ in sizes:
        preset, bare, ratio = step_against_floor(net, content, style, shape, device, reps)
        rows.append([f"{shape[0]}x{shape[1]}", f"{preset:.3f}", f"{bare:.3f}",
                     f"{100 * (ratio - 1):+.1f}%"])
        if amp is not None:
            rows[-1].append(f"{bare_step_seconds(net, shape, device, reps, amp):.3f}")
    header = ["size", "d2l step (s)", "bare VGG19 fwd+bwd (s)", "overhead"]
    if amp is not None:
        header.append(f"bare fwd+bwd, {str(amp).split('.')[-1]} autocast (s)")
    say(f"Per-step time, median of {reps} steps, 'd2l' preset without fast against the floor "
        f"(a bare pass timed between each two steps; overhead: median of the per-step ratios):")
    say(table(header, rows, markdown))
    say()

    rows = []
    layers = get_preset("d2l").style_layers + get_preset("d2l").content_layers
    for shape in memory_sizes:
        with PeakMemory(device) as memory:
            transfer(content, style, preset="d2l", net=net, image_shape=shape, num_steps=1,
                     device=device, progress=False)
        estimate = bytes_per_pixel(layers) * shape[0] * shape[1]
        rows.append([f"{shape[0]}x{shape[1]}", mib(memory.bytes), mib(estimate)])
    say("Peak memory of one 'd2l' step (targets included), float32, against d2lstyle.memory's "
        "estimate:")
    say(table(["size", "peak memory", "estimate"], rows, markdown))
    say()

    say(f"Feed-forward stylizer (d2lstyle.feedforward, the shipped architecture, random weights: "
        f"the cost does not depend on them): one stylize call, median of {reps} after a warm-up, "
        f"against one optimisation step (a bare VGG19 forward and backward, the floor of a "
        f"step) and the {get_preset('gatys').num_steps} steps of the 'gatys' preset's transfer:")
    say(feedforward_table(net, device, feedforward_sizes, reps, markdown))
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m d2lstyle.benchmark",
        description="Time the book's loop against transfer(preset='d2l', fast=True) in one process.")
    parser.add_argument("--sizes", type=parse_sizes, default=None, metavar="HxW:STEPS,...",
                        help=f"sizes and the book's steps at each (default: {DEFAULT_SIZES})")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best there is)")
    parser.add_argument("--reps", type=int, default=15, help="steps timed for the per-step table")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_SIZES}, random weights, tiny memory sizes")
    parser.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    parser.add_argument("--feedforward-only", action="store_true",
                        help="only the feed-forward table (a minute or two on a CPU)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    device = try_device(args.device)
    if args.quick:
        sizes = args.sizes or parse_sizes(QUICK_SIZES)
        weights, memory_sizes, reps = None, QUICK_MEMORY_SIZES, min(args.reps, 2)
        feedforward_sizes = ((32, 48),)
    else:
        sizes = args.sizes or parse_sizes(DEFAULT_SIZES)
        weights, memory_sizes, reps = "original", MEMORY_SIZES, args.reps
        feedforward_sizes = FEEDFORWARD_SIZES
    start = time.perf_counter()
    if args.feedforward_only:
        net = truncate(vgg19(weights), get_preset("gatys").style_layers).to(device)
        print(f"d2lstyle benchmark on {device}: {device_name(device)}; torch {torch.__version__}")
        print(feedforward_table(net, device, feedforward_sizes, reps, args.markdown))
    else:
        run(sizes, device, weights, memory_sizes, reps, args.markdown,
            feedforward_sizes=feedforward_sizes)
    print(f"\n(total {time.perf_counter() - start:.0f} s; reproduce: python -m d2lstyle.benchmark "
          f"{' '.join(argv if argv is not None else sys.argv[1:])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

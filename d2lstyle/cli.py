"""The command line: ``d2lstyle CONTENT STYLE -o OUT``, a thin layer over :func:`d2lstyle.transfer`.

Everything that can be checked cheaply is checked before any real work: the arguments, the output
name, then the images (read in full), and only then is the network built. A failed run prints one
line on stderr, ``d2lstyle: error: <culprit>: <what went wrong>``, and writes nothing; the output is
written under a temporary name and renamed, so an existing OUT survives a failed run intact.

Exit status: 0 done; 1 the run failed (an unreadable image, unavailable weights, ...); 2 a usage
error (a bad option or value); 130 interrupted with Ctrl-C (the image so far is saved if the
optimisation had started).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from PIL import Image

from . import __version__
from .images import ImageLoadError, demo_images, load_image, postprocess
from .presets import PRESETS, Preset, get_preset
from .transfer import Result, transfer
from .vgg import WeightsUnavailableError

PROG = "d2lstyle"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Output formats by extension: the common ones that hold an 8-bit RGB image.
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}
WEIGHT_NAMES = {"original": "original", "torchvision": "torchvision", "none": None}


class UsageError(Exception):
    """The command line itself is wrong (exit status 2)."""


class RunError(Exception):
    """The command line is fine but the run cannot go on (exit status 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line from :func:`main` rather than usage text and an exit."""

    def error(self, message):
        raise UsageError(message)


# ----------------------------------------------------------------------------- argument types

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if not 0 <= value < 2**63:  # a range that torch.manual_seed and torch.Generator accept
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63 - 1, not {value}")
    return value


def device_name(text: str) -> str:
    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r} (try cpu, cuda, cuda:1 or mps)") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Render CONTENT in the style of STYLE (Gatys et al.; D2L section 14.12). "
                    "With no images, stylise the book's demo pair.",
        epilog="Exit status: 0 done, 1 run failed, 2 usage error, 130 interrupted "
               "(the image so far is saved).",
    )
    parser.add_argument("content", nargs="?", metavar="CONTENT", help="content image: path or URL")
    parser.add_argument("style", nargs="?", metavar="STYLE", help="style image: path or URL")
    parser.add_argument("-o", "--output", default="stylised.png", metavar="OUT",
                        help="where to write the result; its folder is created if missing; "
                             f"one of {', '.join(OUTPUT_FORMATS)} (default: %(default)s)")
    parser.add_argument("--preset", choices=list(PRESETS), default="gatys",
                        help="'gatys': relu4_2 content, L-BFGS; 'd2l': the book's chapter exactly "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help="optimiser steps (default: the preset's)")
    parser.add_argument("--size", type=positive_int, metavar="PX",
                        help="longest side of the output in pixels, aspect ratio kept "
                             "(default: the preset's)")
    parser.add_argument("--weights", default="original", metavar="original|torchvision|none|PATH",
                        help="VGG19 weights: 'original' (offline), 'torchvision' (downloaded "
                             "once), 'none' (random, for tests) or a state-dict file "
                             "(default: %(default)s)")
    parser.add_argument("--device", type=device_name,
                        help="cpu, cuda, cuda:1, mps (default: the best there is)")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default: %(default)s)")
    for term in ("content", "style", "tv"):
        parser.add_argument(f"--{term}-weight", type=non_negative_float, metavar="W",
                            help=f"weight of the {term} loss (default: the preset's)")
    parser.add_argument("--save-every", type=positive_int, metavar="N",
                        help="also save the image every N steps, next to OUT as OUT_stepNNNN")
    parser.add_argument("--fast", action="store_true",
                        help="the same objective reached sooner: L-BFGS on an image pyramid, "
                             "coarse sizes first (python -m d2lstyle.benchmark measures it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


# ----------------------------------------------------------------------------- checks before work

def check_output(name: str) -> tuple[Path, str]:
    """``(path, PIL format)`` for the output file ``name``, or a :class:`UsageError`."""
    out = Path(name)
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    Image.init()
    if fmt is None or fmt not in Image.SAVE:
        got = f"'{out.suffix}'" if out.suffix else "no extension"
        raise UsageError(f"{name}: unsupported output format ({got}); "
                         f"end the name with one of {', '.join(OUTPUT_FORMATS)}")
    if out.is_dir():
        raise UsageError(f"{name}: is a folder; give a file name such as {out / 'stylised.png'}")
    existing = next(folder for folder in (out.parent, *out.parent.parents) if folder.exists())
    if not existing.is_dir():
        raise UsageError(f"{name}: cannot create a folder inside {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"{name}: no permission to write in {existing}")
    return out, fmt


def check_weights(weights: str):
    """The ``weights`` argument for :func:`d2lstyle.vgg19`; a path must name an existing file."""
    if weights in WEIGHT_NAMES:
        return WEIGHT_NAMES[weights]
    if not Path(weights).is_file():
        raise RunError(f"{weights}: no such weights file (--weights takes original, torchvision, "
                       "none or the path of a VGG19 state dict)")
    return weights


def check_device(name: str | None) -> None:
    """Refuse a device this machine does not have, before any work is done."""
    if name is None:
        return
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise RunError(f"--device {name}: no such CUDA device here ({count} found); "
                           "try --device cpu")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise RunError(f"--device {name}: MPS is not available here; try --device cpu")


def read_images(content: str | None, style: str | None, quiet: bool):
    """Both images read in full now, so bad input fails fast; paths stay paths so that later
    messages can name them (reading an image twice costs little next to stylising it)."""
    if content is None:
        return demo_images(verbose=not quiet)
    load_image(content), load_image(style)
    return content, style


# ----------------------------------------------------------------------------- writing images

def save_image(image: Image.Image, path: Path, fmt: str) -> None:
    """Write ``image`` to ``path`` atomically: a temporary file in the same folder, then a rename,
    so that ``path`` is either the old file or the complete new one, never a partial one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as file:
            image.save(file, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if isinstance(error, OSError):  # name the file asked for, not the temporary one
            raise RunError(f"{path}: cannot write ({error.strerror or error})") from error
        raise


def step_path(out: Path, step: int) -> Path:
    """Where the image after ``step`` steps goes: ``out/pic.png`` -> ``out/pic_step0050.png``."""
    return out.with_name(f"{out.stem}_step{step:04d}{out.suffix}")


def saver(out: Path, fmt: str, every: int):
    """A :func:`transfer` callback saving the image every ``every`` steps next to ``out``."""

    def callback(step, X, record):
        # Called before step ``step``'s update: X is the image after ``step`` updates.
        if step > 0 and step % every == 0:
            save_image(postprocess(X), step_path(out, step), fmt)
        return False

    return callback


# ----------------------------------------------------------------------------- the command

def run(args: argparse.Namespace) -> int:
    """Check everything, stylise, save; returns the exit status."""
    start = time.perf_counter()
    out, fmt = check_output(args.output)
    weights = check_weights(args.weights)
    check_device(args.device)
    settings = get_preset(args.preset).with_overrides(
        num_steps=args.steps, size=args.size, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight)
    content, style = read_images(args.content, args.style, args.quiet)

    callback = saver(out, fmt, args.save_every) if args.save_every else None
    result = stylise(content, style, settings, weights, callback, args)
    save_image(result.image, out, fmt)
    return report(result, out, args.quiet, time.perf_counter() - start)


def stylise(content, style, settings: Preset, weights, callback, args) -> Result:
    """:func:`transfer` with the command line's options, minus the library's chatter."""
    # torch.hub prints "Downloading: ..." on stdout, whatever transfer's progress setting.
    hush = contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext()
    with hush, warnings.catch_warnings():
        # transfer() warns when the loss becomes non-finite; report() says it once, in one line.
        warnings.filterwarnings("ignore", message="d2lstyle: ", category=RuntimeWarning)
        return transfer(content, style, preset=settings, weights=weights, device=args.device,
                        seed=args.seed, fast=args.fast, callback=callback,
                        progress=not args.quiet)


def report(result: Result, out: Path, quiet: bool, seconds: float) -> int:
    """Say what was written (and why the run stopped early, if it did); returns the exit status."""
    if result.stopped and result.stopped.startswith("interrupted"):
        print(f"{PROG}: {result.stopped}; saved the image so far to {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.stopped and "non-finite" in result.stopped:
        print(f"{PROG}: warning: {result.stopped}", file=sys.stderr)
    if not quiet:
        w, h = result.image.size
        print(f"{PROG}: wrote {out} ({w}x{h} pixels, {len(result.history)} steps, {seconds:.1f} s)")
    return EXIT_OK


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if (args.content is None) != (args.style is None):
        raise UsageError("give both CONTENT and STYLE images, or neither to use the demo pair")
    return args


def fail(error, status: int) -> int:
    """Print ``error`` as one line on stderr and return ``status``."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    print(f"{PROG}: error: {lines[0]}", file=sys.stderr)
    return status


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        args = parse_args(argv)
    except UsageError as error:
        return fail(error, EXIT_USAGE)
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else EXIT_OK
    try:
        return run(args)
    except UsageError as error:
        return fail(error, EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RunError, ImageLoadError, WeightsUnavailableError, OSError, RuntimeError,
            ValueError, MemoryError) as error:
        return fail(error, EXIT_FAILED)

"""The command line: ``d2lstyle CONTENT STYLE -o OUT``, a thin layer over :func:`d2lstyle.transfer`;
``d2lstyle CONTENT --model NAME_OR_PATH -o OUT`` stylises with a trained feed-forward network
(:func:`d2lstyle.feedforward.stylize`) instead.

Everything that can be checked cheaply is checked before any real work: the arguments, the output
name, then the images (read in full), and only then is the network built. A failed run prints one
line on stderr, ``d2lstyle: error: <culprit>: <what went wrong>``, and writes nothing; the output is
written under a temporary name and renamed, so an existing OUT survives a failed run intact.

Exit status: 0 done; 1 the run failed (an unreadable image, unavailable weights, ...); 2 a usage
error (a bad option or value, including a device this machine does not have); 130 interrupted with Ctrl-C (the image so far is saved if the
optimisation had started).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from .errors import (DeviceMemoryError, ImageLoadError, ModelError, SettingError,
                     WeightsUnavailableError)

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


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line from :func:`main` rather than usage text and an exit."""

    def error(self, message):
        raise UsageError(message)


# ----------------------------------------------------------------------------- argument types

def number(kind):
    """An argparse type that only parses ``kind`` (int or float): the ranges are checked by
    :mod:`d2lstyle.validation`, the same way as for the library, with the same words."""
    words = {int: "a whole number", float: "a number"}[kind]

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, not {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def numbers(text: str) -> list[float]:
    """An argparse type for comma-separated numbers (``0.7,0.3``); ranges are checked later."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, such as 0.7,0.3, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Render CONTENT in the style of STYLE (Gatys et al.; D2L section 14.12), "
                    "or of several STYLEs blended. With no images, stylise the book's demo pair. "
                    "With --model and no STYLE, stylise CONTENT in one pass of a trained "
                    "feed-forward network (Johnson et al. 2016).",
        epilog="Exit status: 0 done, 1 run failed, 2 usage error, 130 interrupted "
               "(the image so far is saved).",
    )
    parser.add_argument("content", nargs="?", metavar="CONTENT", help="content image: path or URL")
    parser.add_argument("style", nargs="*", metavar="STYLE",
                        help="style image(s): path or URL; several are blended (--style-blend)")
    parser.add_argument("-o", "--output", default="stylised.png", metavar="OUT",
                        help="where to write the result; its folder is created if missing; "
                             f"one of {', '.join(OUTPUT_FORMATS)} (default: %(default)s)")
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="a trained feed-forward network: a shipped model's name (swirls, "
                             "mosaic) or a .pt file from python -m d2lstyle.feedforward train; "
                             "give CONTENT and no STYLE")
    parser.add_argument("--preset", default="gatys", metavar="gatys|d2l",
                        help="'gatys': relu4_2 content, L-BFGS; 'd2l': the book's chapter exactly "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=number(int), metavar="N",
                        help="optimiser steps (default: the preset's)")
    parser.add_argument("--size", type=number(int), metavar="PX",
                        help="longest side of the output in pixels, aspect ratio kept "
                             "(default: the preset's)")
    parser.add_argument("--weights", default="original", metavar="original|torchvision|none|PATH",
                        help="VGG19 weights: 'original' (offline), 'torchvision' (downloaded "
                             "once), 'none' (random, for tests) or a state-dict file "
                             "(default: %(default)s)")
    parser.add_argument("--device",
                        help="cpu, cuda, cuda:1, mps (default: the best there is)")
    parser.add_argument("--seed", type=number(int), default=0, help="random seed (default: %(default)s)")
    for term in ("content", "style", "tv"):
        parser.add_argument(f"--{term}-weight", type=number(float), metavar="W",
                            help=f"weight of the {term} loss (default: the preset's)")
    parser.add_argument("--style-layer-weights", type=numbers, metavar="W1,W2,...",
                        help="one weight per style layer of the preset, e.g. 1,1,1,0,1 "
                             "(Gatys et al.'s w_l; default: 1 each)")
    parser.add_argument("--normalize-style-layers", action=argparse.BooleanOptionalAction,
                        help="divide each style layer's term by its target Gram matrix's mean "
                             "square, so that every layer counts (default: the preset's)")
    parser.add_argument("--style-blend", type=numbers, metavar="W1,W2,...",
                        help="weights of several STYLE images, one each, e.g. 0.7,0.3 "
                             "(normalised to sum 1; default: equal)")
    parser.add_argument("--style-scale", type=number(float), metavar="S",
                        help="size of the style image(s) relative to the output: 0.5 finer "
                             "strokes, 2 coarser (default: 1)")
    colors = parser.add_mutually_exclusive_group()
    colors.add_argument("--original-colors", action="store_const", const="luminance",
                        dest="preserve_colors",
                        help="keep the content's colours: stylise the luminance only and put "
                             "the content's chrominance back (Gatys et al. 2017)")
    colors.add_argument("--histogram-colors", action="store_const", const="histogram",
                        dest="preserve_colors",
                        help="give the style image(s) the content's colour mean and covariance "
                             "first, then transfer as usual")
    parser.add_argument("--save-every", type=number(int), metavar="N",
                        help="also save the image every N steps, next to OUT as OUT_stepNNNN")
    parser.add_argument("--fast", action="store_true",
                        help="the same objective reached sooner: L-BFGS on an image pyramid, "
                             "coarse sizes first (python -m d2lstyle.benchmark measures it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


# ----------------------------------------------------------------------------- checks before work

def check_output(name: str, inputs=()) -> tuple[Path, str]:
    """``(path, PIL format)`` for the output file ``name``, or a :class:`UsageError`; ``inputs``
    are the image arguments, which the output must not overwrite."""
    from PIL import Image

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
    for number, source in enumerate(inputs):
        label = "CONTENT" if number == 0 else "STYLE"
        if source is not None and is_same_file(out, Path(source)):
            raise UsageError(f"{name}: is the {label} image {source}; writing there would destroy "
                             "it, so give another -o")
    return out, fmt


def is_same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (through links and ``..`` too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def check_weights(weights: str):
    """The ``weights`` argument for :func:`d2lstyle.vgg19`; a path must name an existing file."""
    if weights in WEIGHT_NAMES:
        return WEIGHT_NAMES[weights]
    if not Path(weights).is_file():
        raise RunError(f"{weights}: no such weights file (--weights takes original, torchvision, "
                       "none or the path of a VGG19 state dict)")
    return weights


# ----------------------------------------------------------------------------- writing images

def save_image(image, path: Path, fmt: str) -> None:
    """Write ``image`` to ``path`` atomically: a temporary file in the same folder, then a rename,
    so that ``path`` is either the old file or the complete new one, never a partial one."""
    from .atomic import atomic_path

    try:
        with atomic_path(path) as partial, open(partial, "wb") as file:
            image.save(file, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
    except OSError as error:  # name the file asked for, not the temporary one
        raise RunError(f"{path}: cannot write ({error.strerror or error})") from error


def step_path(out: Path, step: int) -> Path:
    """Where the image after ``step`` steps goes: ``out/pic.png`` -> ``out/pic_step0050.png``."""
    return out.with_name(f"{out.stem}_step{step:04d}{out.suffix}")


def saver(out: Path, fmt: str, every: int):
    """A :func:`transfer` callback saving the image every ``every`` steps next to ``out``."""

    from .images import postprocess

    def callback(step, X, record):
        # Called before step ``step``'s update: X is the image after ``step`` updates.
        if step > 0 and step % every == 0:
            save_image(postprocess(X), step_path(out, step), fmt)
        return False

    return callback


# ----------------------------------------------------------------------------- the command

def run(args: argparse.Namespace) -> int:
    """Check everything, stylise, save; returns the exit status."""
    from .images import demo_images  # torch and the rest: after the arguments, not before --help
    from .validation import checked_settings

    start = time.perf_counter()
    if args.model is not None:
        return run_model(args, start)
    out, fmt = check_output(args.output, (args.content, *args.style))
    weights = check_weights(args.weights)
    if args.save_every is not None and args.save_every < 1:
        raise UsageError(f"--save-every must be at least 1, not {args.save_every}")
    settings = checked_settings(args.preset, size=args.size, num_steps=args.steps,
                                content_weight=args.content_weight, style_weight=args.style_weight,
                                tv_weight=args.tv_weight, style_scale=args.style_scale,
                                style_layer_weights=args.style_layer_weights,
                                normalize_style_layers=args.normalize_style_layers)
    # (checked before the demo pair's download)
    content = args.content
    style = args.style[0] if len(args.style) == 1 else args.style
    if content is None:
        content, style = demo_images(verbose=not args.quiet)
    callback = saver(out, fmt, args.save_every) if args.save_every else None
    result = stylise(content, style, settings, weights, callback, args)
    save_image(result.image, out, fmt)
    return report(result, out, args.quiet, time.perf_counter() - start)


# Options of the optimisation that a feed-forward network has no use for: (dest, flag, default).
NOT_FOR_MODELS = (("preset", "--preset", "gatys"), ("steps", "--steps", None),
                  ("weights", "--weights", "original"), ("content_weight", "--content-weight", None),
                  ("style_weight", "--style-weight", None), ("tv_weight", "--tv-weight", None),
                  ("style_layer_weights", "--style-layer-weights", None),
                  ("normalize_style_layers", "--normalize-style-layers", None),
                  ("style_blend", "--style-blend", None), ("style_scale", "--style-scale", None),
                  ("preserve_colors", "--original-colors/--histogram-colors", None),
                  ("save_every", "--save-every", None), ("fast", "--fast", False))


def run_model(args: argparse.Namespace, start: float) -> int:
    """``d2lstyle CONTENT --model NAME_OR_PATH``: one pass of a trained network; returns the exit
    status. The model and the photo are read, and the output name checked, before any work."""
    for dest, flag, default in NOT_FOR_MODELS:
        if getattr(args, dest) != default:
            raise UsageError(f"{flag} is an option of the optimisation; a feed-forward --model "
                             "has no use for it (leave it out)")
    out, fmt = check_output(args.output, (args.content,))
    if args.size is not None:
        from .validation import whole_number

        whole_number("size", args.size, 1)
    if is_same_file(out, Path(args.model)):
        raise UsageError(f"{args.output}: is the --model file {args.model}; give another -o")
    from .devices import try_device
    from .feedforward import get_model, stylize
    from .images import load_image

    device = try_device(args.device)
    model = get_model(args.model)
    content = load_image(args.content)
    image = stylize(content, model, size=args.size, device=device)
    save_image(image, out, fmt)
    if not args.quiet:
        w, h = image.size
        print(f"{PROG}: wrote {out} ({w}x{h} pixels, model {args.model}, "
              f"{time.perf_counter() - start:.1f} s)")
    return EXIT_OK


def stylise(content, style, settings, weights, callback, args):
    """:func:`transfer` with the command line's options, minus the library's chatter. It checks
    the settings, then reads both images in full, before it builds the network."""
    from .style_transfer import transfer

    # torch.hub prints "Downloading: ..." on stdout, whatever transfer's progress setting.
    hush = contextlib.redirect_stdout(io.StringIO()) if args.quiet else contextlib.nullcontext()
    with hush, warnings.catch_warnings():
        if args.quiet:  # --quiet: no messages at all, the libraries' warnings included
            warnings.simplefilter("ignore")
        # transfer() warns when the loss becomes non-finite; report() says it once, in one line.
        warnings.filterwarnings("ignore", message="d2lstyle: ", category=RuntimeWarning)
        return transfer(content, style, preset=settings, weights=weights, device=args.device,
                        seed=args.seed, fast=args.fast, style_blend=args.style_blend,
                        preserve_colors=args.preserve_colors or False, callback=callback,
                        progress=not args.quiet)


def report(result, out: Path, quiet: bool, seconds: float) -> int:
    """Say what was written (and why the run stopped early, if it did); returns the exit status."""
    if result.stopped and result.stopped.startswith("interrupted"):
        print(f"{PROG}: {result.stopped}; saved the image so far to {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    from .loop import non_finite

    if non_finite(result.stopped):
        print(f"{PROG}: warning: {result.stopped}", file=sys.stderr)
    if not quiet:
        w, h = result.image.size
        print(f"{PROG}: wrote {out} ({w}x{h} pixels, {len(result.history)} steps, {seconds:.1f} s)")
    return EXIT_OK


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.model is not None:
        if args.content is None:
            raise UsageError("--model needs a CONTENT image to stylise")
        if args.style:
            raise UsageError(f"give either STYLE ({args.style[0]}) or --model, not both: a "
                             "feed-forward model brings its own style")
        return args
    if (args.content is None) != (not args.style):
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
        try:
            args = parse_args(argv)
        except SystemExit as done:  # --help, --version
            return done.code if isinstance(done.code, int) else EXIT_OK
        return run(args)
    except (UsageError, SettingError) as error:
        return fail(error, EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RunError, ImageLoadError, ModelError, WeightsUnavailableError, DeviceMemoryError,
            OSError, RuntimeError, ValueError, MemoryError) as error:
        return fail(error, EXIT_FAILED)

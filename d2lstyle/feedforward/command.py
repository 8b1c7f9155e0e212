"""``python -m d2lstyle.feedforward``: train a feed-forward stylizer, or list the shipped ones.

    python -m d2lstyle.feedforward train STYLE PHOTOS -o MODEL.pt --steps N --seed S [--resume]
    python -m d2lstyle.feedforward list

STYLE is an image (path or URL) or one of the styles drawn by :mod:`d2lstyle.patterns`
(``swirls``, ``mosaic``); PHOTOS is a folder of photos or ``builtin`` (scikit-image's, see
:mod:`d2lstyle.feedforward.photos`). The model is written with its record (the command, seed,
steps, data, licence, final loss) inside it and in ``MODEL.json`` next to it. Training writes a
checkpoint (``MODEL.ckpt`` unless ``--checkpoint`` says otherwise) every ``--checkpoint-every``
steps; after Ctrl-C or a crash, the same command with ``--resume`` carries on from it.

Errors are one line, as for ``d2lstyle`` itself; exit status 0 done, 1 failed, 2 usage error,
130 interrupted (the checkpoint is saved).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import __version__
from ..cli import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser, RunError,
                   UsageError, check_weights, fail, number)
from ..errors import ImageLoadError, ModelError, SettingError, WeightsUnavailableError

PROG = "python -m d2lstyle.feedforward"
PATTERNS = ("swirls", "mosaic")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Train a feed-forward stylizer (Johnson et al. 2016) "
                                           "for one style, or list the shipped ones.")
    commands = parser.add_subparsers(dest="command", metavar="train|list", parser_class=Parser)
    commands.required = True
    commands.add_parser("list", help="the shipped models and how each was made")
    train = commands.add_parser("train", help="train a model for one style",
                                description="Train a model for STYLE on PHOTOS.")
    train.add_argument("style", metavar="STYLE",
                       help=f"style image: path, URL, or a drawn pattern ({', '.join(PATTERNS)})")
    train.add_argument("photos", metavar="PHOTOS",
                       help="a folder of training photos, or 'builtin' (scikit-image's)")
    train.add_argument("-o", "--output", required=True, metavar="MODEL",
                       help="where to write the model (.pt); its record goes to MODEL.json")
    train.add_argument("--steps", type=number(int), default=1000, metavar="N",
                       help="Adam steps in all, counting those of a resumed checkpoint "
                            "(default: %(default)s)")
    train.add_argument("--seed", type=number(int), default=0, help="random seed (default: %(default)s)")
    train.add_argument("--size", type=number(int), default=256, metavar="PX",
                       help="side of the square training crops (default: %(default)s)")
    train.add_argument("--batch-size", type=number(int), default=4, metavar="N",
                       help="crops per step (default: %(default)s)")
    train.add_argument("--lr", type=number(float), default=1e-3, help="Adam's learning rate "
                       "(default: %(default)s)")
    train.add_argument("--style-size", type=number(int), metavar="PX",
                       help="longest side of the style image for its Gram targets "
                            "(default: --size); larger: larger strokes")
    for term in ("content", "style", "tv"):
        train.add_argument(f"--{term}-weight", type=number(float), metavar="W",
                           help=f"weight of the {term} loss (default: the 'gatys' preset's"
                                + ("; the shipped models use 1e6 and 4e5, less, so that the photo "
                                   "shows: docs/feedforward.md)" if term == "style" else ")"))
    train.add_argument("--checkpoint", metavar="PATH",
                       help="checkpoint file (default: MODEL with the suffix .ckpt)")
    train.add_argument("--checkpoint-every", type=number(int), default=50, metavar="N",
                       help="write the checkpoint every N steps (default: %(default)s)")
    train.add_argument("--resume", action="store_true",
                       help="carry on from the checkpoint if there is one")
    train.add_argument("--weights", default="original", metavar="original|torchvision|none|PATH",
                       help="VGG19's weights for the loss (default: %(default)s)")
    train.add_argument("--device", help="cpu, cuda, mps (default: the best there is)")
    train.add_argument("--quiet", action="store_true", help="no progress bar and no messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def style_image(style: str):
    """``(image, description, licence)`` for STYLE: a drawn pattern's name, or a path or URL."""
    from .. import patterns
    from ..images import load_image

    if style in PATTERNS and not Path(style).exists():
        return (getattr(patterns, style)(), f"d2lstyle.patterns.{style}() (512x384, seed 0)",
                "CC0 (drawn by d2lstyle)")
    return load_image(style), style, "that of the style image"


def photos_record(photos: str) -> tuple[str, str]:
    """``(description, licence)`` of the training photos."""
    from .photos import BUILTIN, HELD_OUT

    if photos == "builtin":
        names = ", ".join(f"skimage/data/{name}" for name in BUILTIN)
        return (f"builtin: {names} (scikit-image 0.26's bundled photos; held out: "
                f"{', '.join(HELD_OUT)})", "CC0 or public domain (scikit-image's _fetchers.py)")
    return photos, "that of the photos"


def train_command(args, argv) -> int:
    import torch

    from ..devices import try_device
    from .models import save
    from .training import train

    out = Path(args.output)
    if out.suffix != ".pt":
        raise UsageError(f"{args.output}: a model file's name must end with .pt")
    if out.is_dir():
        raise UsageError(f"{args.output}: is a folder; give a file name such as {out / 'style.pt'}")
    checkpoint = Path(args.checkpoint) if args.checkpoint else out.with_suffix(".ckpt")
    if checkpoint.exists() and not args.resume:
        raise UsageError(f"{checkpoint}: a checkpoint is already there; add --resume to carry on "
                         "from it, or delete it to start afresh")
    weights = check_weights(args.weights)
    device = try_device(args.device)
    style, style_text, style_licence = style_image(args.style)
    photos_text, photos_licence = photos_record(args.photos)
    start = time.perf_counter()
    try:
        model, history = train(style, args.photos, size=args.size, steps=args.steps,
                               batch_size=args.batch_size, lr=args.lr, style_size=args.style_size,
                               content_weight=args.content_weight, style_weight=args.style_weight,
                               tv_weight=args.tv_weight, weights=weights, seed=args.seed,
                               device=device, progress=not args.quiet, checkpoint=checkpoint,
                               checkpoint_every=args.checkpoint_every, resume=args.resume)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the checkpoint {checkpoint} holds the steps done so far: "
              "run the same command with --resume to carry on", file=sys.stderr)
        return EXIT_INTERRUPTED
    last = history[-min(50, len(history)):]  # the loss at the end, averaged over random batches
    final = {term: sum(r[term] for r in last) / len(last) for term in ("content", "style", "tv", "total")}
    licence = ("CC0" if "CC0" in style_licence and photos_licence.startswith("CC0")
               else f"the weights are derived from the style image and the photos: "
                    f"{style_licence}; {photos_licence}")
    record = {"name": out.stem, "command": f"{PROG} " + " ".join(argv), "seed": args.seed,
              "steps": history[-1]["step"], "size": args.size, "batch_size": args.batch_size,
              "lr": args.lr, "style_size": args.style_size or args.size,
              "content_weight": args.content_weight, "style_weight": args.style_weight,
              "tv_weight": args.tv_weight, "preset": "gatys", "vgg19_weights": args.weights,
              "style": style_text, "photos": photos_text, "licence": licence,
              "final_loss": final, "final_loss_steps": len(last),
              "training_seconds": round(history[-1]["time"], 1), "device": str(device),
              "torch": torch.__version__, "d2lstyle": __version__}
    save(model, out, **record)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    if not args.quiet:
        print(f"{PROG}: wrote {out} and {out.with_suffix('.json').name} ({record['steps']} steps, "
              f"final loss {final['total']:.4g}, {time.perf_counter() - start:.0f} s); "
              f"checkpoint kept at {checkpoint}")
    return EXIT_OK


def list_command() -> int:
    from .models import available, pretrained

    names = available()
    if not names:
        print("no model has been trained and shipped yet")
    for name in names:
        record = pretrained(name).record
        print(f"{name}: {record.get('steps')} steps at {record.get('size')} px, seed "
              f"{record.get('seed')}, final loss {record.get('final_loss', {}).get('total', '?')}; "
              f"{record.get('command', '')}")
    return EXIT_OK


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, --version
            return done.code if isinstance(done.code, int) else EXIT_OK
        return list_command() if args.command == "list" else train_command(args, argv)
    except (UsageError, SettingError) as error:
        return fail(error, EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RunError, ImageLoadError, ModelError, WeightsUnavailableError, OSError, RuntimeError,
            ValueError, MemoryError) as error:
        return fail(error, EXIT_FAILED)

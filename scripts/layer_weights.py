"""Per-layer style terms, layer normalisation and the TV weight (issue 11): the evidence, measured.

    python scripts/layer_weights.py                     # everything; about 10 minutes on 2 idle cores
    python scripts/layer_weights.py terms               # only the per-layer terms and the two full runs
    python scripts/layer_weights.py --weights torchvision   # the same for torchvision's VGG19
    python scripts/layer_weights.py --smoke --out /tmp/l   # tiny sizes, random weights: a check

The offline pair of the notebooks: content scikit-image's ``chelsea.png`` (300x451, the 'd2l'
preset's aspect), style :func:`d2lstyle.patterns.swirls` (brush strokes), the original VGG19
weights, the 'gatys' preset at ``--size`` (longest side; 225 gives 150x225) for ``--steps`` L-BFGS
steps. What it prints (docs/layer-weights.md has a run's numbers):

* ``terms``: each style layer's term (the book's ``style_loss``, unweighted, and the relative one,
  :func:`d2lstyle.losses.relative_style_loss`), the content and TV terms, at the start (the content
  image) and at the end of two runs, the preset as it was before issue 11 (the book's terms,
  style weight 10, TV weight 10) and with ``normalize_style_layers``; the
  normalised run's style weight is the one that gives the same weighted style loss at the start
  (10 x the sum of the book's terms / the sum of the relative terms), rounded to one digit.
* ``layers``: the picture each style layer makes on its own (normalised, that style weight),
  with ``fast=True``'s line search (see the comment there).
* ``tv``: the normalised run with the TV weights of ``--tv`` (the first one 0), their weighted TV
  term against the content and style terms, and how far each picture is from the one with TV 0.

Pictures go to ``--out`` as PNG (``terms.png``, ``layers.png``, ``tv.png``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from d2lstyle import Objective, get_preset, transfer, vgg19
from d2lstyle.images import load_image, package_image
from d2lstyle.losses import content_loss, relative_style_loss, style_loss, tv_loss
from d2lstyle.patterns import swirls
from d2lstyle.style_transfer import image_shapes

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def terms(objective: Objective, X: torch.Tensor) -> dict:
    """The unweighted terms of the image X (1, 3, h, w): per style layer the book's style loss
    ('book') and the relative one ('relative'), the content loss and the TV loss."""
    with torch.no_grad():
        (Y_content,), styles_Y_hat = objective.extract_features(X)
        pairs = list(zip(styles_Y_hat, objective.styles_Y_gram))
        return {"book": [style_loss(Y, G).item() for Y, G in pairs],
                "relative": [relative_style_loss(Y, G).item() for Y, G in pairs],
                "content": content_loss(Y_content, objective.contents_Y[0]).item(),
                "tv": tv_loss(X).item()}


def labelled(images, labels, side: int) -> Image.Image:
    """One row of images, each scaled to height ``side``, with a caption above it."""
    scaled = [img.resize((round(img.width * side / img.height), side)) for img in images]
    row = Image.new("RGB", (sum(img.width for img in scaled) + 4 * (len(scaled) - 1), side + 14),
                    "white")
    x = 0
    for img, label in zip(scaled, labels):
        row.paste(img, (x, 14))
        ImageDraw.Draw(row).text((x + 2, 1), label, fill="black")
        x += img.width + 4
    return row


def table(rows: dict, key: str) -> str:
    lines = ["| image | " + " | ".join(LAYERS) + " | content | TV |",
             "| --- |" + " --- |" * (len(LAYERS) + 2)]
    for name, t in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3g}" for v in t[key])
                     + f" | {t['content']:.3g} | {t['tv']:.3g} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["terms", "layers", "tv"])
    parser.add_argument("--size", type=int, default=225)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--tv", default="0,1e5,1e6,1e7", help="TV weights for part 'tv'")
    parser.add_argument("--style-weight", type=float, default=None,
                        help="the normalised runs' style weight (default: calibrated, see above)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/layer_weights"))
    parser.add_argument("--weights", default="original",
                        help="VGG19's weights: original (offline) or torchvision (downloaded once)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    size, steps = (32, 2) if args.smoke else (args.size, args.steps)
    net = vgg19(None if args.smoke else args.weights)
    content, style = load_image(package_image("chelsea.png")), swirls()
    # The 'gatys' preset as it was before issue 11: the book's style terms, style 10, TV 10.
    preset = get_preset("gatys").with_overrides(size=size, num_steps=steps, style_weight=10.0,
                                                tv_weight=10.0, normalize_style_layers=False)
    content_shape, style_shapes = image_shapes(content, [style], preset)
    objective = Objective(net, content, style, content_shape, style_shapes[0], preset,
                          torch.device("cpu"))
    start = terms(objective, objective.content_X)
    weight = args.style_weight or float(
        f"{preset.style_weight * sum(start['book']) / sum(start['relative']):.0e}")
    print(f"# {content_shape[0]}x{content_shape[1]}, {steps} L-BFGS steps; normalised style "
          f"weight {weight:g} (same weighted style loss at the start: "
          f"{preset.style_weight * sum(start['book']):.3g} against "
          f"{weight * sum(start['relative']):.3g})")
    record = {"shape": content_shape, "steps": steps, "style_weight": weight, "start": start}

    def run(**overrides):
        began = time.perf_counter()
        result = transfer(content, style, net=net, preset=preset, device="cpu", progress=False,
                          **overrides)
        return result, time.perf_counter() - began

    if "terms" in args.parts:
        book, seconds_book = run()
        normalised, seconds_norm = run(normalize_style_layers=True, style_weight=weight)
        rows = {"start (the content)": start,
                "end, the book's terms (style 10)": terms(objective, book.tensor),
                f"end, normalised (style {weight:g})": terms(objective, normalised.tensor)}
        print("\nThe book's style loss per layer (unweighted):\n" + table(rows, "book"))
        print("\nThe relative style loss per layer:\n" + table(rows, "relative"))
        print(f"\n{steps} steps: {seconds_book:.0f} s (book's terms), {seconds_norm:.0f} s "
              "(normalised)")
        for name, result in (("book's terms", book), ("normalised", normalised)):
            last = result.history[-1]
            print(f"weighted terms at the end, {name}: content {last['content']:.3g}, style "
                  f"{last['style']:.3g}, TV {last['tv']:.3g}")
        record["terms"] = rows
        labelled([content, style, book.image, normalised.image],
                 ["content", "style", "book's terms, style 10", f"normalised, style {weight:g}"],
                 content_shape[0]).save(args.out / "terms.png")

    if "layers" in args.parts:
        images, seconds = [], 0.0
        for layer in LAYERS:
            # fast: the line search. The preset's plain L-BFGS (no line search) stalls with
            # relu1_1 alone at 150x225: its second step overshoots, and the curvature it then
            # estimates makes every later step tiny (the relative term stays at 0.962).
            result, took = run(style_layers=[layer], normalize_style_layers=True,
                               style_weight=weight, fast=True)
            images.append(result.image)
            seconds += took
            final = [r for r in result.history if r["shape"] == tuple(content_shape)]
            print(f"{layer} alone (fast=True): relative term {final[0]['style'] / weight:.3g} -> "
                  f"{final[-1]['style'] / weight:.3g} at full size, {took:.0f} s")
        labelled([content] + images, ["content"] + [f"{layer} alone" for layer in LAYERS],
                 content_shape[0]).save(args.out / "layers.png")

    if "tv" in args.parts:
        tv_weights = [float(w) for w in args.tv.split(",")]
        images, pictures = [], []
        for tv_weight in tv_weights:
            result, took = run(normalize_style_layers=True, style_weight=weight,
                               tv_weight=tv_weight)
            last = result.history[-1]
            t = terms(objective, result.tensor)
            images.append(result.image)
            pictures.append(result.tensor)
            change = (result.tensor - pictures[0]).abs().mean().item()
            print(f"TV weight {tv_weight:g}: weighted content {last['content']:.3g}, style "
                  f"{last['style']:.3g}, TV {last['tv']:.3g} (unweighted TV {t['tv']:.3g}); mean "
                  f"|difference| from TV 0: {change:.3g} (normalised units), {took:.0f} s")
            record.setdefault("tv", []).append({"tv_weight": tv_weight, "last": last,
                                                "terms": t, "change": change})
        labelled(images, [f"TV weight {w:g}" for w in tv_weights],
                 content_shape[0]).save(args.out / "tv.png")
    (args.out / "layer_weights.json").write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Make every picture in figures/ from the package, never by hand: ``make figures``.

    python scripts/make_figures.py                   # all figures into figures/
    python scripts/make_figures.py gallery tv_sweep  # only these
    python scripts/make_figures.py --smoke --out /tmp/f   # tiny and fast, to check the script

Every input image is redistributable: scikit-image's bundled photographs (public domain or CC0)
and style images drawn by d2lstyle.patterns (our own, CC0). figures/README.md lists the sources.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

import d2lstyle
from d2lstyle import extract_features, preprocess, transfer, vgg19
from d2lstyle.images import load_image, package_image
from d2lstyle.patterns import mosaic, swirls

ROOT = Path(__file__).resolve().parents[1]


def pairs():
    """The gallery's (name, content, style) triples."""
    return [
        ("astronaut_swirls", load_image(package_image("astronaut.png")), swirls()),
        ("chelsea_mosaic", load_image(package_image("chelsea.png")), mosaic()),
        ("rocket_hubble", load_image(package_image("rocket.jpg")),
         load_image(package_image("hubble_deep_field.jpg"))),
    ]


def fit(img: Image.Image, height: int) -> Image.Image:
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)


def grid(rows, height: int, gap: int = 4) -> Image.Image:
    """Paste rows of PIL images, each scaled to ``height``, into one white-separated picture."""
    rows = [[fit(img, height) for img in row] for row in rows]
    width = max(sum(img.width for img in row) + gap * (len(row) - 1) for row in rows)
    canvas = Image.new("RGB", (width, len(rows) * height + gap * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        x = 0
        for img in row:
            canvas.paste(img, (x, r * (height + gap)))
            x += img.width + gap
    return canvas


def save(img: Image.Image, out: Path, name: str) -> None:
    path = out / name
    if path.suffix == ".jpg":
        img.save(path, quality=88, optimize=True)
    else:
        img.save(path, optimize=True)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)


def gallery(net, out: Path, smoke: bool) -> None:
    """The default 'gatys' preset on three redistributable pairs: content | style | result."""
    rows = []
    for name, content, style in pairs():
        kwargs = dict(size=48, num_steps=2) if smoke else {}
        start = time.perf_counter()
        result = transfer(content, style, net=net, progress=False, **kwargs)
        print(f"  {name}: {len(result.history)} steps in {time.perf_counter() - start:.0f} s, "
              f"loss {result.history[0]['total']:.3g} -> {result.history[-1]['total']:.3g}")
        save(result.image, out, f"{name}.jpg")
        rows.append([content, style, result.image])
    save(grid(rows, 48 if smoke else 220), out, "gallery.jpg")


def feature_maps(net, out: Path, smoke: bool) -> None:
    """Four channels of conv1_1 ... conv5_1 for the astronaut: detail fades, layout stays."""
    import matplotlib.pyplot as plt

    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    X = preprocess(load_image(package_image("astronaut.png")), (64, 64) if smoke else (224, 224))
    with torch.no_grad():
        _, maps = extract_features(X, net, [], layers)
    fig, axes = plt.subplots(len(layers), 5, figsize=(7.5, 7.5))
    for row, (name, Y) in enumerate(zip(layers, maps)):
        axes[row, 0].imshow(d2lstyle.postprocess(X))
        axes[row, 0].set_ylabel(f"{name}\n{tuple(Y.shape[1:])}", fontsize=8)
        for col in range(1, 5):
            axes[row, col].imshow(Y[0, col * 7].numpy(), cmap="viridis")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "feature_maps.png", dpi=80)
    plt.close(fig)
    print(f"wrote {out / 'feature_maps.png'}")


def content_by_layer(net, out: Path, smoke: bool) -> None:
    """Reconstruct an image from noise with the content loss alone, at five depths."""
    img = load_image(package_image("coffee.png"))
    layers = ["conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2"]
    row = [img]
    for layer in layers:
        result = transfer(img, img, net=net, init="noise", content_layers=[layer], style_layers=[],
                          style_weight=0, tv_weight=0, optimizer="lbfgs", lr=1,
                          size=32 if smoke else 128, num_steps=2 if smoke else 100, progress=False)
        row.append(result.image)
    save(grid([row], 48 if smoke else 128), out, "content_by_layer.jpg")


def texture_by_layer(net, out: Path, smoke: bool) -> None:
    """Synthesise a texture from noise with style layers up to relu1_1, ..., relu5_1."""
    style = swirls()
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    row = [style]
    for k in range(1, len(layers) + 1):
        # fast=True: L-BFGS with a line search; without one, relu1_1 alone can stall
        # (docs/layer-weights.md, section 2)
        result = transfer(style, style, net=net, init="noise", content_layers=[],
                          style_layers=layers[:k], content_weight=0, tv_weight=0, fast=True,
                          size=32 if smoke else 128, num_steps=4 if smoke else 100,
                          progress=False)
        row.append(result.image)
    save(grid([row], 48 if smoke else 128), out, "texture_by_layer.jpg")


def tv_sweep(net, out: Path, smoke: bool) -> None:
    """The same transfer with the TV weight swept, 0, 1e5, the 'gatys' preset's 1e6 and 1e7:
    from speckle to smooth, then to blurred strokes."""
    content, style = load_image(package_image("astronaut.png")), swirls()
    row = []
    for tv_weight in (0, 1e5, 1e6, 1e7):
        result = transfer(content, style, net=net, tv_weight=tv_weight,
                          size=48 if smoke else 160, num_steps=2 if smoke else 80, progress=False)
        row.append(result.image)
    save(grid([row], 48 if smoke else 160), out, "tv_sweep.jpg")


def training(net, out: Path, smoke: bool) -> None:
    """The book's loop (the 'd2l' preset) on a redistributable pair: result and loss curves."""
    import matplotlib.pyplot as plt

    # chelsea.png is 300x451, the 'd2l' preset's 2:3 shape: the book's fixed image_shape resizes
    # without keeping the aspect, so a square photo would come out stretched.
    content, style = load_image(package_image("chelsea.png")), swirls()
    # The book's loop with the weights notebook 05 measured for the original network (presets.py).
    result = transfer(content, style, preset="d2l", net=net, style_weight=0.1, tv_weight=1e4,
                      progress=False,
                      image_shape=(32, 48) if smoke else (120, 180), num_steps=3 if smoke else 200)
    steps = [r["step"] for r in result.history]
    fig, (ax, ay) = plt.subplots(1, 2, figsize=(9, 3))
    for key in ("content", "style", "tv"):
        ax.semilogy(steps, [r[key] for r in result.history], label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    ax.legend()
    ay.imshow(result.image)
    ay.set_axis_off()
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=80)
    plt.close(fig)
    print(f"wrote {out / 'training.png'}")


def original_colors(net, out: Path, smoke: bool) -> None:
    """Keeping the photograph's colours (Gatys et al. 2017): content | style | plain transfer |
    luminance-only transfer | colour histogram matching first."""
    rows = []
    for _, content, style in pairs()[:2]:
        row = [content, style]
        for preserve_colors in (False, "luminance", "histogram"):
            result = transfer(content, style, net=net, preserve_colors=preserve_colors,
                              size=48 if smoke else 160,
                              num_steps=4 if smoke else 100, progress=False)
            row.append(result.image)
        rows.append(row)
    save(grid(rows, 48 if smoke else 160), out, "original_colors.jpg")


def style_blend(net, out: Path, smoke: bool) -> None:
    """Two styles blended, the weight of the first swept from 1 to 0: swirls | five results |
    mosaic."""
    content, first, second = load_image(package_image("chelsea.png")), swirls(), mosaic()
    row = [first]
    for weight in (1.0, 0.75, 0.5, 0.25, 0.0):
        result = transfer(content, [first, second], style_blend=[weight, 1 - weight], net=net,
                          size=48 if smoke else 160,
                          num_steps=4 if smoke else 100, progress=False)
        row.append(result.image)
    save(grid([row + [second]], 48 if smoke else 160), out, "style_blend.jpg")


def style_scale(net, out: Path, smoke: bool) -> None:
    """The style image resized against the output: style_scale 0.5, 1, 2 (finer to coarser
    strokes), after the content and the style."""
    content, style = load_image(package_image("astronaut.png")), swirls()
    row = [content, style]
    for scale in (0.5, 1, 2):
        result = transfer(content, style, net=net, style_scale=scale,
                          size=48 if smoke else 160,
                          num_steps=4 if smoke else 100, progress=False)
        row.append(result.image)
    save(grid([row], 48 if smoke else 160), out, "style_scale.jpg")


def feedforward(net, out: Path, smoke: bool) -> None:
    """The shipped feed-forward models on the two photos they never saw: photo | one
    forward pass of pretrained('swirls') | of pretrained('mosaic'), each 320 px tall. Smoke mode: untrained tiny
    networks, since the shipped models may be missing where the script is only checked."""
    from d2lstyle import feedforward as ff

    row_height = 64 if smoke else 320
    models = {}
    for name in ("swirls", "mosaic"):
        if smoke:
            torch.manual_seed(0)
            models[name] = ff.TransformNet(ff.Architecture(widths=(4, 8, 8), blocks=1)).eval()
        else:
            models[name] = ff.pretrained(name)
    rows = []
    for photo_name in ff.HELD_OUT:
        photo = load_image(package_image(photo_name))
        longest = round(row_height * max(photo.size) / photo.height)  # the result is row_height tall
        rows.append([photo] + [ff.stylize(photo, model, size=longest) for model in models.values()])
    save(grid(rows, row_height), out, "feedforward.jpg")


FIGURES = {f.__name__: f for f in (gallery, feature_maps, content_by_layer, texture_by_layer,
                                   tv_sweep, training, original_colors, style_blend, style_scale,
                                   feedforward)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"figures to make (default: all): {', '.join(FIGURES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "figures")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, random weights")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = vgg19(None if args.smoke else "original")
    for name in args.names or FIGURES:
        start = time.perf_counter()
        FIGURES[name](net, args.out, args.smoke)
        print(f"  {name}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

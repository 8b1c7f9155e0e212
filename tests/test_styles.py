"""Several styles (style_blend, --style-blend) and the style's scale (style_scale, --style-scale).

A random network on tiny images, so that the file takes seconds. Bad values get one line, the same
words from the library and the command line.
"""

import math

import numpy as np
import pytest
import torch
from PIL import Image

import d2lstyle
import d2lstyle.objective
import d2lstyle.speed.plan
from d2lstyle import transfer
from d2lstyle.cli import main
from d2lstyle.objective import Objective, blend_grams

SIZE = 32
KWARGS = dict(size=SIZE, num_steps=8, progress=False)


@pytest.fixture(scope="module")
def stripes():
    """A second style: bold vertical stripes (64x48), nothing like the noise of ``images``."""
    row = np.where((np.arange(64) // 4) % 2 == 0, 230, 30).astype(np.uint8)
    return Image.fromarray(np.stack([np.tile(row, (48, 1))] * 3, axis=-1), "RGB")


def test_blend_grams_by_hand():
    a, b = [torch.ones(1, 2, 2)], [torch.full((1, 2, 2), 3.0)]
    torch.testing.assert_close(blend_grams([a, b], [0.25, 0.75])[0], torch.full((1, 2, 2), 2.5))
    torch.testing.assert_close(blend_grams([a, b])[0], torch.full((1, 2, 2), 2.0))  # equal weights
    assert blend_grams([a], [1.0])[0] is a[0]  # one style: its own targets


def style_term(net, content, styles, blend, X):
    """The weighted style loss of X (1, 3, h, w) against the blended targets of ``styles``."""
    settings = d2lstyle.get_preset("gatys").with_overrides(size=SIZE)
    shapes = [d2lstyle.images.fit_longest_side(*s.size, SIZE) for s in styles]
    objective = Objective(net, content, styles, tuple(X.shape[-2:]), shapes, settings,
                          torch.device("cpu"), style_blend=blend)
    with torch.no_grad():
        return float(sum(objective.compute_loss(X, *objective.extract_features(X))[1]))


def test_blend_at_one_zero_is_the_single_style_run(net, images, stripes):
    single = transfer(images[0], images[1], net=net, seed=3, **KWARGS)
    blended = transfer(images[0], [images[1], stripes], style_blend=[1.0, 0.0], net=net, seed=3,
                       **KWARGS)
    assert torch.equal(blended.tensor, single.tensor)
    assert [r["total"] for r in blended.history] == [r["total"] for r in single.history]


def test_even_blend_is_closer_to_the_blended_target_than_either_style(net, images, stripes):
    content, noise = images
    styles = [noise, stripes]
    # The style term alone, large enough for L-BFGS's gradient tolerance with a random network,
    # minimised with a line search (fast=True; no coarse level at this size).
    results = {name: transfer(content, style, style_blend=blend, net=net, content_weight=0,
                              style_weight=1e6, tv_weight=0, fast=True, size=SIZE, num_steps=20,
                              progress=False).tensor
               for name, style, blend in (("noise", noise, None), ("stripes", stripes, None),
                                          ("blend", styles, [0.5, 0.5]))}
    losses = {name: style_term(net, content, styles, [0.5, 0.5], X) for name, X in results.items()}
    assert losses["blend"] < losses["noise"] and losses["blend"] < losses["stripes"], losses


def test_blend_weights_are_normalised(net, images, stripes):
    a = transfer(images[0], [images[1], stripes], style_blend=[0.7, 0.3], net=net, **KWARGS)
    b = transfer(images[0], [images[1], stripes], style_blend=[7, 3], net=net, **KWARGS)
    torch.testing.assert_close(a.tensor, b.tensor)


def style_shapes(monkeypatch):
    """Record the (h, w) that every style image is resized to (preprocess's second argument)."""
    seen = []
    original = d2lstyle.objective.preprocess

    def spy(img, shape):
        seen.append(tuple(shape))
        return original(img, shape)

    monkeypatch.setattr(d2lstyle.objective, "preprocess", spy)
    return seen


@pytest.mark.parametrize("scale, longest", [(0.5, 32), (1, 64), (2, 128)])
def test_style_scale_resizes_the_style_against_the_output(scale, longest, net, images,
                                                          monkeypatch):
    seen = style_shapes(monkeypatch)
    result = transfer(*images, net=net, size=64, num_steps=1, style_scale=scale, progress=False)
    content_shape, style_shape = seen[:2]  # the content first, then the style (70x50)
    assert content_shape == (48, 64) and result.image.size == (64, 48)
    assert max(style_shape) == longest
    assert style_shape == d2lstyle.images.fit_longest_side(70, 50, longest)
    assert result.settings.style_scale == scale


def test_style_scale_with_the_books_image_shape(net, images, monkeypatch):
    seen = style_shapes(monkeypatch)
    transfer(*images, net=net, preset="d2l", image_shape=(40, 60), num_steps=1, style_scale=0.5,
             progress=False)
    assert seen[:2] == [(40, 60), (20, 30)]


def test_small_style_scale_with_the_pyramid(net, images, monkeypatch):
    # fast=True halves the style with the content: at style_scale 0.5 a 32x24 level would leave
    # the style 16x11, too small for relu5_1, so the pyramid keeps its levels larger.
    monkeypatch.setattr(d2lstyle.speed.plan, "MIN_COARSE_SIDE", 16)
    result = transfer(*images, net=net, size=64, style_scale=0.5, fast=True, num_steps=4,
                      progress=False)
    assert {r["shape"] for r in result.history} == {(48, 64)}  # no level fits: full size only
    result = transfer(*images, net=net, size=64, fast=True, num_steps=4, progress=False)
    assert (24, 32) in {r["shape"] for r in result.history}  # at style_scale 1, one does


def test_style_scale_too_small_for_the_network_names_the_style(net, images):
    with pytest.raises(d2lstyle.SettingError, match="resized to 8x6 pixels, is too small"):
        transfer(*images, net=net, size=32, style_scale=0.25, progress=False)


BAD = [
    (dict(style_blend=[0.5, -0.5]), r"^style_blend \(--style-blend\) weights must be finite "
                                    r"numbers >= 0, not -0.5$"),
    (dict(style_blend=[0.5, math.nan]), r"^style_blend \(--style-blend\) weights must be finite "
                                        r"numbers >= 0, not nan$"),
    (dict(style_blend=[1.0, math.inf]), r"weights must be finite numbers >= 0, not inf$"),
    (dict(style_blend=[1.0, 1.0, 1.0]), r"^style_blend \(--style-blend\) has 3 weight\(s\) for 2 "
                                        r"style image\(s\): give one weight per style image$"),
    (dict(style_blend=[0, 0]), r"^style_blend \(--style-blend\) weights are all 0"),
    (dict(style_scale=0), r"^style_scale \(--style-scale\) must be a finite number > 0, not 0$"),
    (dict(style_scale=-2.0), r"^style_scale \(--style-scale\) must be a finite number > 0, "
                             r"not -2.0$"),
    (dict(style_scale=math.inf), r"^style_scale \(--style-scale\) must be a finite number > 0"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_bad_values_one_line_in_the_api(kwargs, message, net, images, stripes):
    with pytest.raises(d2lstyle.SettingError, match=message) as caught:
        transfer(images[0], [images[1], stripes], net=net, **KWARGS, **kwargs)
    assert "\n" not in str(caught.value)


def test_bad_style_lists(net, images):
    with pytest.raises(d2lstyle.SettingError, match="style is an empty list"):
        transfer(images[0], [], net=net, **KWARGS)
    with pytest.raises(d2lstyle.SettingError, match=r"has 2 weight\(s\) for 1 style image"):
        transfer(*images, style_blend=[0.5, 0.5], net=net, **KWARGS)


@pytest.fixture
def files(images, stripes, tmp_path):
    paths = [tmp_path / name for name in ("content.png", "noise.png", "stripes.png")]
    for img, path in zip((*images, stripes), paths):
        img.save(path)
    return paths


CLI = ["--weights", "none", "--size", "32", "--steps", "2", "--quiet"]


@pytest.mark.parametrize("args, message", [
    (["--style-blend=-0.5,1.5"], "style_blend (--style-blend) weights must be finite numbers "
                                 ">= 0, not -0.5"),
    (["--style-blend", "nan,1"], "not nan"),
    (["--style-blend", "1,1,1"], "has 3 weight(s) for 2 style image(s)"),
    (["--style-blend", "0.5,x"], "expected numbers separated by commas"),
    (["--style-scale", "0"], "style_scale (--style-scale) must be a finite number > 0, not 0.0"),
    (["--style-scale=-1"], "style_scale (--style-scale) must be a finite number > 0, not -1.0"),
])
def test_bad_values_one_line_in_the_cli(args, message, files, tmp_path, capsys):
    out = tmp_path / "out.png"
    status = main([*map(str, files), "-o", str(out), *CLI, *args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("d2lstyle: error: ") and message in err, err
    assert not out.exists()


def test_cli_blends_two_styles_like_the_api(files, tmp_path, capsys, net):
    out = tmp_path / "blend.png"
    assert main([*map(str, files), "-o", str(out), *CLI, "--style-blend", "0.7,0.3",
                 "--style-scale", "2"]) == 0
    assert Image.open(out).size == (32, 24)

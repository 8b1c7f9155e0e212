"""d2lstyle.colors and preserve_colors / --original-colors: the content's colours kept.

Conversions are checked against Pillow's own YCbCr and by hand (grey has Cb = Cr = 128); a
transfer with a random network on tiny images checks that the chrominance is the content's
within a few levels while the luminance is stylised.
"""

import numpy as np
import pytest
import torch
from PIL import Image

import d2lstyle
from d2lstyle import preprocess, transfer
from d2lstyle.cli import main
from d2lstyle.colors import (keep_colors, luminance, match_colors, match_luminance, rgb_to_ycbcr,
                             ycbcr_to_rgb)


@pytest.fixture(scope="module")
def photo():
    """A colourful 60x80 picture: red rising to the right, blue rising downwards, a green patch."""
    ys, xs = np.mgrid[0:60, 0:80]
    rgb = np.stack([xs / 79, np.full_like(xs, 0.3, dtype=float), ys / 59], axis=-1)
    rgb[20:40, 30:50] = (0.2, 0.8, 0.3)
    return Image.fromarray((rgb * 255).round().astype(np.uint8), "RGB")


def chroma(img):
    """(Cb, Cr) of an RGB PIL image as float arrays in 0..255, by Pillow's conversion."""
    ycbcr = np.asarray(img.convert("YCbCr"), dtype=np.float64)
    return ycbcr[..., 1], ycbcr[..., 2]


def test_ycbcr_by_hand_and_like_pillow(photo):
    grey = torch.full((1, 3, 2, 2), 0.4)
    torch.testing.assert_close(rgb_to_ycbcr(grey), torch.tensor([0.4, 0.5, 0.5]).view(1, 3, 1, 1)
                               .expand(1, 3, 2, 2))
    X = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(X)), X)
    ours = rgb_to_ycbcr(torch.from_numpy(np.asarray(photo, dtype=np.float64) / 255)
                        .permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy() * 255  # (h, w, 3)
    pillow = np.asarray(photo.convert("YCbCr"), dtype=np.float64)
    assert np.abs(ours - pillow).max() <= 1.0  # Pillow rounds to whole levels


def test_luminance_is_grey_and_matched(photo):
    grey = np.asarray(luminance(photo), dtype=np.float64)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    style = Image.fromarray(np.random.default_rng(0).integers(0, 80, (30, 40, 3), np.uint8))
    matched = np.asarray(match_luminance(style, photo), dtype=np.float64)[..., 0]
    target = np.asarray(photo.convert("L"), dtype=np.float64)
    assert matched.mean() == pytest.approx(target.mean(), abs=1.0)
    assert matched.std() == pytest.approx(target.std(), rel=0.05)


def test_keep_colors_puts_the_contents_chrominance_back(photo):
    content_X = preprocess(photo, (60, 80))
    # another luminance, within the gamut that the content's colours allow
    grey_X = preprocess(luminance(photo).point(lambda v: 0.8 * v + 20), (60, 80))
    kept = keep_colors(grey_X, content_X)
    assert kept.shape == content_X.shape
    ours, theirs = rgb_to_ycbcr(kept * std() + mean()), rgb_to_ycbcr(content_X * std() + mean())
    assert (ours[:, 1:] - theirs[:, 1:]).abs().mean() < 2 / 255
    assert (ours[:, :1] - rgb_to_ycbcr(grey_X * std() + mean())[:, :1]).abs().mean() < 2 / 255


def mean():
    return torch.tensor(d2lstyle.vgg.IMAGENET_MEAN).view(1, 3, 1, 1)


def std():
    return torch.tensor(d2lstyle.vgg.IMAGENET_STD).view(1, 3, 1, 1)


def test_match_colors_moves_mean_and_covariance(photo):
    style = Image.fromarray(np.random.default_rng(1).integers(100, 200, (40, 50, 3), np.uint8))
    matched = np.asarray(match_colors(style, photo), dtype=np.float64).reshape(-1, 3)
    target = np.asarray(photo, dtype=np.float64).reshape(-1, 3)
    np.testing.assert_allclose(matched.mean(0), target.mean(0), atol=3)
    np.testing.assert_allclose(np.cov(matched.T), np.cov(target.T), atol=0.1 * target.var(0).max())
    # a grey style (singular covariance) does not break it
    match_colors(Image.new("RGB", (8, 8), (90, 90, 90)), photo)


def test_original_colors_keep_chrominance_and_stylise_luminance(net, photo):
    style = Image.fromarray(np.random.default_rng(2).integers(0, 256, (50, 70, 3), np.uint8))
    # the book's Adam moves every pixel by about lr a step, whatever the network
    kwargs = dict(net=net, preset="d2l", image_shape=(36, 48), num_steps=5, progress=False)
    plain = transfer(photo, style, **kwargs)
    kept = transfer(photo, style, preserve_colors=True, **kwargs)
    reference = d2lstyle.postprocess(preprocess(photo, (36, 48)))  # the content at that size
    for ours, theirs in zip(chroma(kept.image), chroma(reference)):
        assert np.abs(ours - theirs).mean() <= 3  # acceptance: within 3 of 255 levels
    # the plain transfer does move the colours (the style is random noise)
    assert max(np.abs(a - b).mean() for a, b in zip(chroma(plain.image), chroma(reference))) > 3
    # the luminance was stylised: its style term fell, and it is no longer the photograph's
    assert kept.history[-1]["style"] < kept.history[0]["style"]
    y = np.asarray(kept.image.convert("L"), dtype=np.float64)
    assert np.abs(y - np.asarray(reference.convert("L"), dtype=np.float64)).mean() > 1
    assert kept.tensor.shape == (1, 3, 36, 48)


def test_histogram_colors_runs_and_bad_values(net, photo):
    result = transfer(photo, photo, net=net, size=32, num_steps=2, preserve_colors="histogram",
                      progress=False)
    assert result.image.size == (32, 24)
    with pytest.raises(d2lstyle.SettingError, match=r"^preserve_colors \(--original-colors\) "
                       r"must be True, False, 'luminance' or 'histogram', not 'yes'$"):
        transfer(photo, photo, net=net, preserve_colors="yes", progress=False)


def test_cli_original_colors(net, photo, tmp_path, capsys):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    photo.save(content)
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (50, 70, 3), np.uint8)).save(style)
    out = tmp_path / "out.png"
    assert main([str(content), str(style), "-o", str(out), "--weights", "none", "--size", "48",
                 "--steps", "5", "--quiet", "--original-colors"]) == 0
    result = Image.open(out)
    reference = d2lstyle.postprocess(preprocess(photo, (36, 48)))
    for ours, theirs in zip(chroma(result), chroma(reference)):
        assert np.abs(ours - theirs).mean() <= 3
    status = main([str(content), str(style), "-o", str(out), "--weights", "none", "--quiet",
                   "--original-colors", "--histogram-colors"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "not allowed with argument" in err

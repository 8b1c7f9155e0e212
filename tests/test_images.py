"""Tests for d2lstyle.images: loading any picture safely, preprocess/postprocess.

The network is never used: ``fetch`` is replaced by fakes. Downloads themselves are tested in
test_download.py, hostile files in test_untrusted_files.py.
"""

import io
import re
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from PIL import Image

from d2lstyle import images
from d2lstyle.patterns import swirls
from d2lstyle.images import (DEMO_URLS, OFFLINE_DEMO, ImageLoadError, crop_to_aspect, demo_images,
                             fit_longest_side, load_image, package_image, postprocess, preprocess)
from d2lstyle.vgg import IMAGENET_MEAN, IMAGENET_STD

URL = "https://example.org/pictures/tiny.png"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own empty download cache, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("D2LSTYLE_CACHE", str(folder))
    return folder


@pytest.fixture
def no_network(monkeypatch):
    def fetch(url, **kwargs):
        raise ImageLoadError(f"cannot download {url}: simulated: no network")

    monkeypatch.setattr(images, "fetch", fetch)


def _random_rgb(w, h, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png_bytes(img):
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def _pixels(img):
    return np.asarray(img).tolist()


class TestPreprocess:
    def test_shape_and_dtype(self):
        X = preprocess(_random_rgb(40, 30), (12, 20))
        assert X.shape == (1, 3, 12, 20)
        assert X.dtype == torch.float32

    def test_int_shape_is_the_shorter_side(self):
        assert preprocess(_random_rgb(40, 20), 10).shape == (1, 3, 10, 20)

    def test_from_path(self, tmp_path):
        img = _random_rgb(8, 6)
        img.save(tmp_path / "x.png")
        assert torch.equal(preprocess(tmp_path / "x.png", (6, 8)), preprocess(img, (6, 8)))

    def test_mean_colour_is_zero(self):
        mean = tuple(round(255 * m) for m in IMAGENET_MEAN)  # (124, 116, 104)
        X = preprocess(Image.new("RGB", (16, 12), mean), (6, 8))
        # Rounding to 8 bits moves each channel by at most half a grey level.
        tol = 0.5 / 255 / min(IMAGENET_STD)
        assert X.abs().max().item() <= tol

    def test_white_and_black(self):
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        white = preprocess(Image.new("RGB", (4, 4), (255, 255, 255)), (4, 4))
        black = preprocess(Image.new("RGB", (4, 4), (0, 0, 0)), (4, 4))
        torch.testing.assert_close(white[0, :, 0, 0], (1 - mean) / std)
        torch.testing.assert_close(black[0, :, 0, 0], -mean / std)


class TestPostprocess:
    def test_round_trip_exact(self):
        img = _random_rgb(7, 5)
        out = postprocess(preprocess(img, (5, 7)))
        assert out.mode == "RGB" and out.size == (7, 5)
        assert _pixels(out) == _pixels(img)

    def test_does_not_modify_input(self):
        X = torch.randn(1, 3, 4, 5, requires_grad=True)
        before = X.detach().clone()
        postprocess(X)
        assert torch.equal(X.detach(), before)

    def test_three_dims(self):
        X = preprocess(_random_rgb(5, 4), (4, 5))
        assert _pixels(postprocess(X[0])) == _pixels(postprocess(X))

    def test_batch_gives_list(self):
        a, b = _random_rgb(5, 4, seed=1), _random_rgb(5, 4, seed=2)
        X = torch.cat([preprocess(a, (4, 5)), preprocess(b, (4, 5))])  # (2, 3, 4, 5)
        out = postprocess(X)
        assert isinstance(out, list) and len(out) == 2
        assert _pixels(out[0]) == _pixels(a)
        assert _pixels(out[1]) == _pixels(b)

    def test_clamps(self):
        X = torch.zeros(1, 3, 2, 2)
        X[..., 0, :] = 1e6
        X[..., 1, :] = -1e6
        out = np.asarray(postprocess(X))
        assert (out[0] == 255).all()
        assert (out[1] == 0).all()

    def test_double_input(self):
        img = _random_rgb(5, 4)
        assert _pixels(postprocess(preprocess(img, (4, 5)).double())) == _pixels(img)

    @pytest.mark.parametrize("shape", [(1, 1, 4, 4), (4, 4), (1, 1, 3, 4, 4)])
    def test_exception(self, shape):
        with pytest.raises(ValueError, match=re.escape(f"expects (3, h, w) or (n, 3, h, w), got {shape}")):
            postprocess(torch.zeros(shape))


# Every mode PIL has, with pixels whose RGB can be worked out by hand:
# mode -> (pixels, or raw bytes for the 16-bit modes; the RGB expected for each pixel).
WHITE, BLACK = [255, 255, 255], [0, 0, 0]
EVERY_MODE = {
    "1": ([0, 255], [BLACK, WHITE]),
    "L": ([77], [[77, 77, 77]]),
    "LA": ([(50, 255), (50, 0)], [[50, 50, 50], WHITE]),           # transparent -> white
    "La": ([(50, 255), (0, 0)], [[50, 50, 50], WHITE]),            # premultiplied alpha
    "P": ([1], [[200, 100, 50]]),                                   # palette: 0 black, 1 brown
    "PA": ([(1, 255), (1, 0)], [[200, 100, 50], WHITE]),
    "RGB": ([(10, 20, 30)], [[10, 20, 30]]),
    "RGBA": ([(10, 20, 30, 255), (10, 20, 30, 0)], [[10, 20, 30], WHITE]),
    "RGBa": ([(10, 20, 30, 255), (0, 0, 0, 0)], [[10, 20, 30], WHITE]),
    "RGBX": ([(10, 20, 30, 0)], [[10, 20, 30]]),                    # X is padding
    "CMYK": ([(0, 255, 255, 0), (0, 0, 0, 255)], [[255, 0, 0], BLACK]),  # magenta+yellow = red
    "YCbCr": ([(255, 128, 128), (0, 128, 128)], [WHITE, BLACK]),    # Cb = Cr = 128: grey
    "LAB": ([(255, 128, 128), (0, 128, 128)], [WHITE, BLACK]),      # a = b = 128: grey
    "HSV": ([(0, 255, 255), (85, 255, 255), (0, 0, 200)], [[255, 0, 0], [0, 255, 0], [200] * 3]),
    "I": ([0, 100, 255], [BLACK, [100] * 3, WHITE]),                # 8-bit values stay
    "I;16": (b"\x00\x80", [[128] * 3]),                            # 32768 / 65535 * 255 = 127.5
    "I;16L": (b"\x00\x80", [[128] * 3]),
    "I;16B": (b"\x80\x00", [[128] * 3]),                           # big-endian 32768
    "I;16N": (b"\x00\x80" if sys.byteorder == "little" else b"\x80\x00", [[128] * 3]),
    "F": ([0.0, 0.5, 1.0], [BLACK, [128] * 3, WHITE]),              # [0, 1] floats
}


def _image_in_mode(mode, pixels):
    if isinstance(pixels, bytes):
        return Image.frombytes(mode, (len(pixels) // 2, 1), pixels)
    img = Image.new(mode, (len(pixels), 1))
    if mode in ("P", "PA"):
        img.putpalette([0, 0, 0, 200, 100, 50])
    img.putdata(pixels)
    return img


def test_every_pil_mode_is_tested():
    assert set(EVERY_MODE) == set(Image.MODES)


@pytest.mark.parametrize("mode", EVERY_MODE)
def test_every_mode_becomes_sensible_rgb(mode, tmp_path):
    pixels, expected = EVERY_MODE[mode]
    img = _image_in_mode(mode, pixels)
    assert img.mode == mode
    out = load_image(img)
    assert out.mode == "RGB" and out.size == (len(expected), 1)
    # LittleCMS converts LAB's white and black to within one grey level of exact.
    tolerance = 1 if mode == "LAB" else 0
    assert np.abs(np.asarray(out, dtype=int) - np.array([expected])).max() <= tolerance


class TestLoadImageModes:
    def test_rgba_on_white(self, tmp_path):
        img = Image.new("RGBA", (3, 1))
        img.putdata([(10, 20, 30, 0), (10, 20, 30, 255), (0, 0, 0, 128)])
        img.save(tmp_path / "x.png")
        out = load_image(tmp_path / "x.png")
        assert out.mode == "RGB"
        # transparent -> white; opaque -> itself; black at alpha 128/255 -> 255 * (1 - 128/255) = 127
        assert _pixels(out) == [[[255, 255, 255], [10, 20, 30], [127, 127, 127]]]

    def test_la(self, tmp_path):
        img = Image.new("LA", (2, 1))
        img.putdata([(50, 0), (50, 255)])
        img.save(tmp_path / "x.png")
        assert _pixels(load_image(tmp_path / "x.png")) == [[[255, 255, 255], [50, 50, 50]]]

    def test_l(self, tmp_path):
        Image.new("L", (2, 1), 77).save(tmp_path / "x.png")
        assert _pixels(load_image(tmp_path / "x.png")) == [[[77, 77, 77]] * 2]

    @pytest.mark.parametrize("transparent", [False, True])
    def test_palette(self, tmp_path, transparent):
        img = Image.new("P", (2, 1))
        img.putpalette([0, 0, 0, 200, 100, 50])
        img.putdata([0, 1])
        img.save(tmp_path / "x.png", **({"transparency": 0} if transparent else {}))
        first = [255, 255, 255] if transparent else [0, 0, 0]
        assert _pixels(load_image(tmp_path / "x.png")) == [[first, [200, 100, 50]]]

    def test_16_bit_scaled_not_clipped(self, tmp_path):
        img = Image.fromarray(np.array([[65535, 32768, 0]], dtype=np.uint16))
        img.save(tmp_path / "x.png")
        assert Image.open(tmp_path / "x.png").mode == "I;16"
        # 32768 / 65535 * 255 = 127.5 -> 128; a plain convert("L") would clip it to 255.
        assert _pixels(load_image(tmp_path / "x.png")) == [[[255] * 3, [128] * 3, [0] * 3]]

    def test_float_in_unit_range(self):
        img = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
        assert img.mode == "F"
        assert _pixels(load_image(img)) == [[[0] * 3, [128] * 3, [255] * 3]]

    def test_cmyk(self, tmp_path):
        img = Image.new("CMYK", (3, 1))
        img.putdata([(0, 0, 0, 0), (0, 255, 255, 0), (0, 0, 0, 255)])  # no ink, red, black
        img.save(tmp_path / "x.tif")
        assert _pixels(load_image(tmp_path / "x.tif")) == [[[255, 255, 255], [255, 0, 0], [0, 0, 0]]]

    def test_exif_orientation(self, tmp_path):
        img = Image.new("RGB", (8, 4), (0, 0, 0))
        img.paste((255, 255, 255), (4, 0, 8, 4))  # left half black, right half white
        exif = img.getexif()
        exif[0x0112] = 6  # Orientation: display rotated 90 degrees clockwise
        img.save(tmp_path / "x.jpg", exif=exif)
        out = np.asarray(load_image(tmp_path / "x.jpg"))
        assert out.shape == (8, 4, 3)  # now 4 wide, 8 tall
        # Turned clockwise, the left (black) half is on top; JPEG blurs the middle rows.
        assert out[:3].max() < 20 and out[-3:].min() > 235

    def test_pil_image_in(self):
        img = _random_rgb(3, 2)
        assert _pixels(load_image(img)) == _pixels(img)


class TestLoadImageErrors:
    def test_missing_file(self, tmp_path):
        with pytest.raises(ImageLoadError, match=r"nothere\.jpg: no such file"):
            load_image(tmp_path / "nothere.jpg")

    def test_folder(self, tmp_path):
        (tmp_path / "album").mkdir()
        with pytest.raises(ImageLoadError, match="album: is a folder"):
            load_image(tmp_path / "album")

    def test_text_file(self, tmp_path):
        (tmp_path / "notes.jpg").write_text("hello, not a JPEG")
        with pytest.raises(ImageLoadError, match=r"notes\.jpg: not an image file"):
            load_image(tmp_path / "notes.jpg")

    def test_truncated_jpeg(self, tmp_path):
        _random_rgb(64, 64).save(tmp_path / "full.jpg", quality=90)
        data = (tmp_path / "full.jpg").read_bytes()
        (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
        with pytest.raises(ImageLoadError, match=r"cut\.jpg: cannot read image \(image file is truncated"):
            load_image(tmp_path / "cut.jpg")

    def test_error_is_a_value_error(self, tmp_path):
        with pytest.raises(ValueError):
            load_image(tmp_path / "nothere.jpg")

    # PIL refuses more than 2 * MAX_IMAGE_PIXELS, and only warns between MAX and 2 * MAX.
    @pytest.mark.parametrize("size", [(20, 20), (15, 10)], ids=["over-2-max", "between-max-and-2-max"])
    def test_decompression_bomb(self, tmp_path, monkeypatch, size):
        Image.new("RGB", size).save(tmp_path / "bomb.png")
        monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)
        with pytest.raises(ImageLoadError, match=r"bomb\.png: too many pixels.*decompression bomb"):
            load_image(tmp_path / "bomb.png")

    def test_under_the_pixel_limit_loads(self, tmp_path, monkeypatch):
        Image.new("RGB", (10, 10)).save(tmp_path / "small.png")
        monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 100)
        assert load_image(tmp_path / "small.png").size == (10, 10)


class TestFitLongestSide:
    @pytest.mark.parametrize("width, height, size, expected", [
        (400, 200, 100, (50, 100)),   # landscape: (h, w)
        (200, 400, 100, (100, 50)),   # portrait
        (300, 300, 64, (64, 64)),
        (1000, 1, 10, (1, 10)),       # never a zero side
    ])
    def test_hand_values(self, width, height, size, expected):
        assert fit_longest_side(width, height, size) == expected

    @pytest.mark.parametrize("size", [0, -5])
    def test_exception(self, size):
        with pytest.raises(ValueError, match=f"size must be a positive number of pixels, not {size}"):
            fit_longest_side(400, 200, size)


class TestCropToAspect:
    @pytest.mark.parametrize("width, height, aspect, expected", [
        (512, 512, 1.5, (512, 341)),    # the square astronaut for the 'd2l' preset's 300x450
        (451, 300, 1.5, (451, 300)),    # chelsea.png: within a pixel of 2:3, left as it is
        (300, 450, 1.5, (300, 200)),    # portrait to landscape
        (400, 200, 1.0, (200, 200)),
        (10, 10, 0.001, (1, 10)),       # never a zero side
    ])
    def test_hand_values(self, width, height, aspect, expected):
        assert crop_to_aspect(_random_rgb(width, height), aspect).size == expected

    def test_centre_kept(self):
        # 6 wide, 2 high, columns numbered 0..5; a square crop keeps columns 2 and 3.
        pixels = np.repeat(np.arange(6, dtype=np.uint8)[None, :, None], 2, axis=0).repeat(3, axis=2)
        cropped = np.asarray(crop_to_aspect(Image.fromarray(pixels), 1.0))
        assert cropped[0, :, 0].tolist() == [2, 3] and cropped.shape == (2, 2, 3)

    def test_then_resize_does_not_stretch(self):
        square = _random_rgb(512, 512)
        X = preprocess(crop_to_aspect(square, 450 / 300), (300, 450))
        assert X.shape == (1, 3, 300, 450)
        w, h = crop_to_aspect(square, 450 / 300).size
        assert abs(w / h - 1.5) < 0.01  # the scale is the same along both sides

    def test_argument_unchanged(self):
        img = _random_rgb(40, 20)
        before = _pixels(img)
        out = crop_to_aspect(img, 1.0)
        assert _pixels(img) == before and out is not img
        assert crop_to_aspect(img, 2.0) is not img  # a copy even when nothing is cropped

    @pytest.mark.parametrize("aspect", [0, -1.5, float("nan"), float("inf"), "1.5"])
    def test_exception(self, aspect):
        with pytest.raises(ValueError, match=r"aspect \(width / height\) must be a finite number > 0"):
            crop_to_aspect(_random_rgb(4, 4), aspect)


class TestDemoImages:
    def test_offline_falls_back(self, no_network, capsys):
        content, style = demo_images()
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1
        assert "offline" in lines[0] and "simulated: no network" in lines[0]
        assert OFFLINE_DEMO == ("chelsea.png", "swirls")
        assert "chelsea.png" in lines[0] and "d2lstyle.patterns.swirls()" in lines[0]
        with Image.open(package_image("chelsea.png")) as expected:
            assert content.mode == "RGB" and content.size == (451, 300)
            assert np.array_equal(np.asarray(content), np.asarray(expected.convert("RGB")))
        assert style.mode == "RGB"
        assert np.array_equal(np.asarray(style), np.asarray(swirls()))

    def test_quiet(self, no_network, capsys):
        demo_images(verbose=False)
        assert capsys.readouterr().out == ""

    def test_online(self, monkeypatch, capsys, tmp_path):
        # The book's pair, served by a fake network: no fallback, no message.
        served = {DEMO_URLS[0]: _random_rgb(6, 4, seed=1), DEMO_URLS[1]: _random_rgb(5, 5, seed=2)}

        def fetch(url, timeout=None):
            path = tmp_path / url.rsplit("/", 1)[1]
            path.write_bytes(_png_bytes(served[url]))
            return path

        monkeypatch.setattr(images, "fetch", fetch)
        content, style = demo_images()
        assert _pixels(content) == _pixels(served[DEMO_URLS[0]])
        assert _pixels(style) == _pixels(served[DEMO_URLS[1]])
        assert capsys.readouterr().out == ""

    def test_package_image_missing(self):
        with pytest.raises(ImageLoadError, match="scikit-image ships no image named 'nope.png'"):
            package_image("nope.png")

"""Hostile files through d2lstyle.load_image: things that are not regular files, formats outside the
allow-list (with a trap for any external program Pillow might start), decoders that raise odd
errors, and a seeded fuzz of mutated images. Each ends in an RGB image or one ImageLoadError line.
"""

import collections
import io
import os
import random
import re
import socket
import stat
import struct
import sys
import time

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile, features

from d2lstyle.images import FORMATS, ImageLoadError, load_image, open_image

QUICK = 0.5  # seconds: "at once", with room for a loaded machine
unix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev (Unix)")


def small_image(w=16, h=12):
    """A gradient in red, noise in green, flat blue: every codec has something to do."""
    ramp = np.linspace(0, 255, w).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (h, w))
    pixels = np.stack([np.add.outer(ramp[:h] // 2, ramp // 2), noise, np.full((h, w), 90)], -1)
    return Image.fromarray(pixels.astype(np.uint8))


def encoded(fmt, **options):
    buffer = io.BytesIO()
    small_image().save(buffer, fmt, **options)
    return buffer.getvalue()


def refused_quickly(source, match):
    start = time.monotonic()
    with pytest.raises(ImageLoadError, match=match) as error:
        load_image(source)
    assert time.monotonic() - start < QUICK
    assert len(str(error.value).splitlines()) == 1


# ----------------------------------------------------------------------------- not regular files

@unix_only
class TestNotRegularFiles:
    def test_fifo(self, tmp_path):
        # Opening a FIFO for reading blocks until a writer comes; none ever will.
        fifo = tmp_path / "photo.jpg"
        os.mkfifo(fifo)
        refused_quickly(fifo,
                        r"photo\.jpg: not a regular file \(a FIFO, device or socket\), refused$")

    @pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/stdin"])
    def test_device(self, device):
        if not os.path.exists(device) or stat.S_ISREG(os.stat(device).st_mode):
            pytest.skip(f"no {device} here, or it is a regular file (stdin redirected from one)")
        refused_quickly(device, f"^{device}: not a regular file")

    def test_link_to_a_device(self, tmp_path):
        link = tmp_path / "innocent.png"
        link.symlink_to("/dev/zero")
        refused_quickly(link, r"innocent\.png: not a regular file")

    def test_unix_socket(self, tmp_path):
        path = tmp_path / "s.png"
        if len(str(path)) > 100:  # the limit on a socket's path is about 104 bytes
            pytest.skip("the temporary folder's path is too long for a Unix socket")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            assert stat.S_ISSOCK(os.stat(path).st_mode)
            refused_quickly(path, r"s\.png: not a regular file")

    def test_open_image_refuses_too(self, tmp_path):
        os.mkfifo(tmp_path / "upload")
        with pytest.raises(ImageLoadError, match="^photo.png: not a regular file"):
            open_image(tmp_path / "upload", "photo.png")

    def test_regular_file_still_loads(self, tmp_path):
        small_image().save(tmp_path / "x.png")
        assert load_image(tmp_path / "x.png").size == (16, 12)


# ----------------------------------------------------------------------------- the allow-list

# Programs Pillow runs for some formats: Ghostscript for EPS, djpeg in JpegImageFile.load_djpeg,
# ImageMagick/netpbm when saving GIFs; viewers in ImageShow.
HELPERS = ("gs", "gswin32c", "gswin64c", "djpeg", "cjpeg", "convert", "magick", "ppmquant",
           "ppmtogif", "display", "xdg-open", "eog", "xv")


@pytest.fixture
def trap(tmp_path, monkeypatch):
    """Fake helper programs first on PATH; each call leaves a file in the returned folder."""
    if sys.platform.startswith("win"):
        pytest.skip("shell-script stand-ins need a POSIX shell")
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    for name in HELPERS:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "$@" > "{calls}/{name}.$$"\nexit 0\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # Pillow caches whether gs exists
    return calls


def eps_file(path):
    small_image().save(path, "EPS")
    return path


def test_the_trap_catches_pillow_running_ghostscript(trap, tmp_path):
    # Without the allow-list, Pillow does start "gs" for an EPS file: the trap sees it.
    with Image.open(eps_file(tmp_path / "x.eps")) as img:
        with pytest.raises(Exception):
            img.load()  # the fake gs writes no image
    assert any(name.startswith("gs.") for name in os.listdir(trap))


def test_eps_is_refused_without_starting_ghostscript(trap, tmp_path):
    refused_quickly(eps_file(tmp_path / "drawing.eps"),
                    r"^.*drawing\.eps: not an image file in a format d2lstyle reads "
                    rf"\({re.escape(', '.join(FORMATS))}\)$")
    assert os.listdir(trap) == []


# Formats Pillow reads in-process but d2lstyle does not: less-used decoders, less-tested code.
OUTSIDE = [("PCX", {}), ("TGA", {}), ("SGI", {}), ("QOI", {}), ("DDS", {}),
           ("JPEG2000", {})]


@pytest.mark.parametrize("fmt, options", OUTSIDE, ids=[fmt for fmt, _ in OUTSIDE])
def test_formats_outside_the_list_are_refused(trap, tmp_path, fmt, options):
    if fmt == "JPEG2000" and not features.check("jpg_2000"):
        pytest.skip("this Pillow has no JPEG 2000 encoder")
    path = tmp_path / "picture.img"
    path.write_bytes(encoded(fmt, **options))
    with Image.open(path) as img:
        assert img.format == fmt  # Pillow itself would read it
    refused_quickly(path, r"picture\.img: not an image file in a format d2lstyle reads \(PNG, ")
    assert os.listdir(trap) == []


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("JPEG", {}), ("GIF", {}), ("BMP", {}),
                                          ("TIFF", {}), ("WEBP", {"lossless": True}),
                                          ("PPM", {}), ("ICO", {"sizes": [(16, 12)]})])
def test_formats_on_the_list_load(trap, tmp_path, fmt, options):
    assert fmt in FORMATS
    path = tmp_path / "picture"
    path.write_bytes(encoded(fmt, **options))
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (16, 12)
    if fmt in ("PNG", "BMP", "TIFF", "WEBP", "PPM"):  # lossless, full colour
        assert np.array_equal(np.asarray(out), np.asarray(small_image()))
    assert os.listdir(trap) == []


# ----------------------------------------------------------------------------- decoder errors

# What some Pillow plugins have raised on corrupt files, besides OSError and ValueError.
ODD_ERRORS = [struct.error("unpack requires a buffer of 4 bytes"),
              IndexError("list index out of range"), ZeroDivisionError("division by zero"),
              KeyError("MPO"), TypeError("bad operand"), RuntimeError("")]


@pytest.mark.parametrize("error", ODD_ERRORS, ids=lambda e: type(e).__name__)
def test_any_decoder_error_is_one_line(tmp_path, monkeypatch, error):
    small_image().save(tmp_path / "odd.png")

    def load(self):
        raise error

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    reason = str(error) or type(error).__name__
    message = rf"^.*odd\.png: cannot read image \({re.escape(reason)}\)$"
    with pytest.raises(ImageLoadError, match=message):
        load_image(tmp_path / "odd.png")


# ----------------------------------------------------------------------------- fuzz

def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with random bytes changed, cut short, junk inserted, or its header scrambled."""
    data = bytearray(data)
    kind = rng.randrange(5)
    if kind in (0, 3):
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    if kind in (1, 3):
        data = data[:rng.randrange(1, len(data))]
    if kind == 2:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if kind == 4:  # the header: sizes, modes, offsets
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(min(len(data), 128))] = rng.randrange(256)
    return bytes(data)


FUZZ_SEEDS = {"PNG": {}, "JPEG": {"quality": 80}, "GIF": {}, "BMP": {}, "TIFF": {},
              "TIFF-LZW": {"compression": "tiff_lzw"}, "WEBP": {"quality": 80},
              "WEBP-LOSSLESS": {"lossless": True}}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on corrupt metadata
def test_fuzz_mutated_images(tmp_path):
    seeds = {name: encoded(name.split("-")[0], **options) for name, options in FUZZ_SEEDS.items()}
    outcomes, surprises = collections.Counter(), []
    start = time.monotonic()
    for case in range(3000):
        rng = random.Random(case)
        name = sorted(seeds)[case % len(seeds)]
        path = tmp_path / f"case{case}"
        path.write_bytes(mutate(seeds[name], rng))
        try:
            out = load_image(path)
            assert out.mode == "RGB"
            outcomes["image"] += 1
        except ImageLoadError as error:
            assert len(str(error).splitlines()) == 1 and str(path) in str(error)
            outcomes["refused"] += 1
        except Exception as error:  # anything else is a bug in the loader: keep the case as a test
            surprises.append(f"case {case} ({name}): {type(error).__name__}: {error}")
        path.unlink()
    seconds = time.monotonic() - start
    assert surprises == []
    assert outcomes["image"] > 300 and outcomes["refused"] > 300  # both paths really exercised
    assert seconds < 60

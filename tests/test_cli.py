"""The command line: exit status, one-line errors that name the culprit, files written or not.

Runs use a random network (``--weights none``) on tiny images so that the file takes seconds.
Most call :func:`d2lstyle.cli.main` in-process; a few run ``python -m d2lstyle`` for real.
"""


import os
import struct
import subprocess
import sys
import urllib.error
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import d2lstyle.images
import d2lstyle.objective
import d2lstyle.style_transfer
from d2lstyle.cli import main, step_path
from d2lstyle.vgg import min_side
from d2lstyle.presets import get_preset

REPO = Path(__file__).resolve().parents[1]
FAST = ["--weights", "none", "--size", "32", "--steps", "1", "--quiet"]


# ----------------------------------------------------------------------------- helpers

def noise(w, h, mode="RGB", seed=0):
    """A ``w`` x ``h`` image of random pixels in ``mode``."""
    rng = np.random.default_rng(seed)
    pixels = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    return pixels if mode == "RGB" else pixels.convert(mode)


@pytest.fixture
def pair(tmp_path):
    """A content (24x18 JPEG) and a style (20x24 PNG) file: different sizes and aspects."""
    content, style = tmp_path / "content.jpg", tmp_path / "style.png"
    noise(24, 18).save(content)
    noise(20, 24, seed=1).save(style)
    return content, style


def cli(capsys, *args):
    """``(exit status, stdout, stderr)`` of ``main(args)``."""
    status = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error(err, *culprits):
    """stderr is exactly one ``d2lstyle: error:`` line, mentioning every culprit, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("d2lstyle: error: "), err
    assert "Traceback" not in err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, err)


def files_in(folder):
    return sorted(path.name for path in Path(folder).iterdir())


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type and data (PNG spec, section 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width=30000, height=30000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` 8-bit grey pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1))  # one row's worth; the rest is "missing"
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b""))


# ----------------------------------------------------------------------------- success

def test_smoke_writes_image_with_longest_side_size(pair, tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "result.png"  # folders created
    status, stdout, err = cli(capsys, *pair, "-o", out, "--weights", "none", "--size", "32",
                              "--steps", "1")
    assert status == 0, err
    assert stdout.strip().splitlines() == [stdout.strip()]  # one line saying where
    assert str(out) in stdout
    with Image.open(out) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        assert img.size == (32, 24)  # the content is 24x18: longest side 32, aspect kept
    assert files_in(out.parent) == ["result.png"]  # no temporary file left


def test_quiet_prints_nothing_and_overwrites_named_output(pair, tmp_path, capsys):
    out = tmp_path / "result.jpg"
    out.write_bytes(b"an older result")
    status, stdout, err = cli(capsys, *pair, "-o", out, *FAST, "--fast")
    assert (status, stdout, err) == (0, "", "")
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (32, 24)
    assert files_in(tmp_path) == ["content.jpg", "result.jpg", "style.png"]


def test_save_every_writes_intermediates_next_to_output(pair, tmp_path, capsys):
    out = tmp_path / "runs" / "pic.png"
    status, _, err = cli(capsys, *pair, "-o", out, "--weights", "none", "--size", "32",
                         "--steps", "2", "--save-every", "1", "--quiet")
    assert status == 0, err
    # the image after 1 step; the one after 2 steps is pic.png itself
    assert files_in(out.parent) == ["pic.png", "pic_step0001.png"]
    assert step_path(Path("a/pic.png"), 50) == Path("a/pic_step0050.png")
    with Image.open(out.parent / "pic_step0001.png") as img:
        assert img.size == (32, 24)


@pytest.mark.parametrize("content_mode, style_mode, preset", [
    ("RGBA", "L", "gatys"),
    ("I;16", "P", "d2l"),  # with --size, the book's preset keeps the aspect ratio too
])
def test_odd_but_valid_images(content_mode, style_mode, preset, tmp_path, capsys):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    if content_mode == "I;16":  # 16-bit grey, values across the whole 0..65535 range
        ramp = np.linspace(0, 65535, 30 * 20).reshape(20, 30).astype(np.uint16)
        Image.fromarray(ramp).save(content)
    else:
        noise(30, 20, content_mode).save(content)
    noise(17, 25, style_mode, seed=2).save(style)
    with Image.open(content) as img:
        assert img.mode == content_mode  # the file really is the odd kind
    out = tmp_path / "out.png"
    status, _, err = cli(capsys, content, style, "-o", out, "--preset", preset, *FAST)
    assert status == 0, err
    with Image.open(out) as img:
        assert img.mode == "RGB" and img.size == (32, 21)


def test_non_finite_loss_keeps_last_finite_image_and_warns_once(pair, tmp_path, capsys):
    out = tmp_path / "out.png"
    status, stdout, err = cli(capsys, *pair, "-o", out, "--weights", "none", "--size", "32",
                              "--steps", "2", "--style-weight", "1e308", "--tv-weight", "1e308",
                              "--quiet")
    assert (status, stdout) == (0, "")
    # Even --quiet says so: the image is not what was asked for.
    assert err == ("d2lstyle: warning: loss became non-finite at step 0; "
                   "kept the last finite image\n")
    with Image.open(out) as img:
        assert img.size == (32, 24)


def test_demo_pair_offline(tmp_path, capsys, monkeypatch):
    def no_network(url, **kwargs):
        raise d2lstyle.images.ImageLoadError(f"cannot download {url}: simulated: no network")

    monkeypatch.setattr(d2lstyle.images, "fetch", no_network)
    out = tmp_path / "demo.png"
    status, stdout, err = cli(capsys, "-o", out, "--weights", "none", "--size", "32",
                              "--steps", "1")
    assert status == 0, err
    assert "offline" in stdout and f"wrote {out}" in stdout
    assert out.is_file()


def test_interrupt_saves_image_so_far(pair, tmp_path, capsys, monkeypatch):
    calls = []
    compute_loss = d2lstyle.objective.compute_loss

    def ctrl_c_on_second_step(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return compute_loss(*args)

    monkeypatch.setattr(d2lstyle.objective, "compute_loss", ctrl_c_on_second_step)
    out = tmp_path / "out.png"
    status, _, err = cli(capsys, *pair, "-o", out, "--weights", "none", "--size", "32",
                         "--steps", "5", "--quiet")
    assert status == 130
    assert "interrupted after 1 steps" in err and str(out) in err
    assert len(err.strip().splitlines()) == 1
    with Image.open(out) as img:
        assert img.size == (32, 24)


# ----------------------------------------------------------------------------- bad input

def make_text(path):
    path.write_text("this is not a picture\n")


def make_truncated_jpeg(path):
    noise(64, 64).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def make_bomb(path):
    path.write_bytes(bomb_png())


@pytest.mark.parametrize("name, make, message", [
    ("missing.jpg", None, "no such file"),
    ("a_folder.jpg", Path.mkdir, "is a folder"),
    ("notes.jpg", make_text, "not an image file"),
    ("cut.jpg", make_truncated_jpeg, "truncated"),
    ("bomb.png", make_bomb, "decompression bomb"),
])
@pytest.mark.parametrize("which", ["content", "style"])
def test_bad_image_fails_in_one_line_and_writes_nothing(name, make, message, which, pair,
                                                        tmp_path, capsys, monkeypatch):
    def too_soon(*args, **kwargs):
        raise AssertionError("the network was built before the images were checked")

    monkeypatch.setattr(d2lstyle.style_transfer, "vgg19", too_soon)
    bad = tmp_path / name
    if make is not None:
        make(bad)
    content, style = (bad, pair[1]) if which == "content" else (pair[0], bad)
    out = tmp_path / "out" / "result.png"
    status, stdout, err = cli(capsys, content, style, "-o", out, "--weights", "none")
    assert status == 1
    assert stdout == ""
    assert_one_error(err, name, message)
    assert not out.parent.exists()  # not even its folder


def test_bomb_by_pixel_limit(pair, tmp_path, capsys, monkeypatch):
    # The limit is PIL's: a modest image counts as a bomb when the limit is lower.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    status, _, err = cli(capsys, *pair, "-o", tmp_path / "out.png", *FAST)
    assert status == 1
    assert_one_error(err, "content.jpg", "decompression bomb")


def test_failed_run_leaves_existing_output_intact(pair, tmp_path, capsys):
    out = tmp_path / "result.png"
    noise(8, 8).save(out)
    before = out.read_bytes()
    status, _, err = cli(capsys, tmp_path / "gone.jpg", pair[1], "-o", out, *FAST)
    assert status == 1
    assert_one_error(err, "gone.jpg")
    assert out.read_bytes() == before
    assert files_in(tmp_path) == ["content.jpg", "result.png", "style.png"]


@pytest.mark.parametrize("args, culprit, message", [
    (["--steps", "0"], "--steps", "at least 1"),
    (["--steps", "-5"], "--steps", "at least 1"),
    (["--steps", "ten"], "--steps", "whole number"),
    (["--size", "0"], "--size", "at least 1"),
    (["--save-every", "0"], "--save-every", "at least 1"),
    (["--style-weight", "-1"], "--style-weight", ">= 0"),
    (["--tv-weight", "nan"], "--tv-weight", "finite"),
    (["--seed", "-1"], "--seed", "between"),
    (["--preset", "picasso"], "--preset", "unknown preset 'picasso'"),
    (["--device", "toaster"], "--device", "not a device name"),
    (["--frobnicate"], "--frobnicate", "unrecognized"),
])
def test_bad_option_is_usage_error(args, culprit, message, pair, tmp_path, capsys):
    status, _, err = cli(capsys, *pair, "-o", tmp_path / "out.png", "--weights", "none", *args)
    assert status == 2
    assert_one_error(err, culprit, message)
    assert files_in(tmp_path) == ["content.jpg", "style.png"]


def test_only_one_image_is_usage_error(pair, capsys):
    status, _, err = cli(capsys, pair[0])
    assert status == 2
    assert_one_error(err, "CONTENT and STYLE")


@pytest.mark.parametrize("name, message", [
    ("out.txt", "unsupported output format ('.txt')"),
    ("out", "no extension"),
])
def test_unsupported_output_is_usage_error_before_any_work(name, message, tmp_path, capsys):
    # The images do not even exist: the output name is checked first.
    status, _, err = cli(capsys, tmp_path / "a.jpg", tmp_path / "b.jpg", "-o", tmp_path / name)
    assert status == 2
    assert_one_error(err, name, message, ".png")


def test_output_that_is_a_folder_is_usage_error(pair, tmp_path, capsys):
    folder = tmp_path / "pics.png"
    folder.mkdir()
    status, _, err = cli(capsys, *pair, "-o", folder, *FAST)
    assert status == 2
    assert_one_error(err, "pics.png", "is a folder")


def test_output_under_a_file_fails_before_work(pair, tmp_path, capsys):
    status, _, err = cli(capsys, *pair, "-o", pair[0] / "out.png", *FAST)
    assert status == 2
    assert_one_error(err, "content.jpg", "which is a file")


def test_unwritable_output_names_it_and_leaves_no_partial_file(pair, tmp_path, capsys,
                                                               monkeypatch):
    def disk_full(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    out = tmp_path / "result.png"
    out.write_bytes(b"an older result")
    status, _, err = cli(capsys, *pair, "-o", out, *FAST)
    assert status == 1
    assert_one_error(err, "result.png", "No space left on device")
    assert out.read_bytes() == b"an older result"
    assert files_in(tmp_path) == ["content.jpg", "result.png", "style.png"]


def test_image_too_small_for_network(tmp_path, capsys):
    content, style = tmp_path / "wide.png", tmp_path / "style.png"
    noise(100, 10).save(content)
    noise(16, 16).save(style)
    status, _, err = cli(capsys, content, style, "-o", tmp_path / "out.png", *FAST)
    assert status == 2  # a size too small for the layers is a setting out of range
    assert_one_error(err, "wide.png", "32x3", "larger size")
    # relu5_1 comes after four poolings: 2**4 pixels; relu4_4 (the book's content layer) after three
    preset = get_preset("gatys")
    assert min_side(preset.content_layers + preset.style_layers) == 16
    assert min_side(["relu4_2", "relu4_4"]) == 8
    assert min_side(["pool5"]) == 32


def test_missing_weights_file(pair, tmp_path, capsys):
    status, _, err = cli(capsys, *pair, "-o", tmp_path / "out.png", "--weights",
                         tmp_path / "vgg19.pth")
    assert status == 1
    assert_one_error(err, "vgg19.pth", "no such weights file")


def test_weights_file_that_is_not_a_state_dict(pair, tmp_path, capsys):
    weights = tmp_path / "vgg19.pth"
    weights.write_text("not weights\n")
    status, _, err = cli(capsys, *pair, "-o", tmp_path / "out.png", "--weights", weights,
                         "--size", "32", "--steps", "1", "--quiet")
    assert status == 1
    assert_one_error(err, "vgg19.pth", "cannot load weights file")


def test_torchvision_weights_without_network(pair, tmp_path, capsys, monkeypatch):
    def no_network(url, dst, *args, **kwargs):
        raise urllib.error.URLError("simulated: no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty cache
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    out = tmp_path / "result.png"
    noise(8, 8).save(out)
    before = out.read_bytes()
    status, stdout, err = cli(capsys, *pair, "-o", out, "--weights", "torchvision", "--size", "32",
                              "--steps", "1", "--quiet")
    assert (status, stdout) == (1, "")
    assert_one_error(err, "torchvision's VGG19 weights", "simulated: no network", "TORCH_HOME",
                     "original")
    assert out.read_bytes() == before


def test_help_and_version(capsys):
    status, stdout, _ = cli(capsys, "--help")
    assert status == 0 and "--save-every" in stdout and "Exit status" in stdout
    status, stdout, _ = cli(capsys, "--version")
    assert status == 0 and stdout.startswith("d2lstyle ")


# ----------------------------------------------------------------------------- for real

def python_m(*args, cwd):
    """Run ``python -m d2lstyle ARGS`` in a fresh interpreter."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run([sys.executable, "-m", "d2lstyle", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_python_m_success(pair, tmp_path):
    done = python_m(pair[0].name, pair[1].name, "-o", "out/result.webp", "--weights", "none",
                    "--size", "32", "--steps", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == done.stdout.strip().splitlines()[0]
    assert "out/result.webp" in done.stdout
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    with Image.open(tmp_path / "out" / "result.webp") as img:
        assert img.size == (32, 24)


def test_python_m_failure(pair, tmp_path):
    done = python_m("photo.jpg", pair[1].name, "--weights", "none", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "d2lstyle: error: photo.jpg: no such file\n"
    assert files_in(tmp_path) == ["content.jpg", "style.png"]

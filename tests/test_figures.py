"""scripts/make_figures.py runs from the package (smoke mode: tiny, random weights) and the
committed figures are the ones the README shows."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from d2lstyle.patterns import mosaic, pointillism, swirls, text_image

ROOT = Path(__file__).resolve().parents[1]


def test_make_figures_smoke(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--smoke",
                           "--out", str(tmp_path), "feature_maps", "training", "feedforward"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feature_maps.png", "feedforward.jpg",
                                                        "training.png"]
    for path in tmp_path.iterdir():
        with Image.open(path) as img:
            assert min(img.size) > 100


def test_make_figures_rejects_unknown_name(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--smoke",
                           "--out", str(tmp_path), "galery"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "unknown figure 'galery'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_readme_pictures_exist():
    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert "figures/gallery.jpg" in pictures
    for picture in pictures:
        if not picture.startswith("http"):
            assert (ROOT / picture).is_file(), f"README shows {picture}, which is missing"


def test_patterns_are_deterministic_and_colourful():
    for draw in (swirls, mosaic, pointillism):
        a, b = np.asarray(draw(96, 64, seed=1)), np.asarray(draw(96, 64, seed=1))
        assert a.shape == (64, 96, 3)
        assert np.array_equal(a, b), f"{draw.__name__} is not deterministic for a seed"
        assert not np.array_equal(a, np.asarray(draw(96, 64, seed=2)))
        assert a.std(axis=(0, 1)).min() > 15, f"{draw.__name__} has too little contrast to be a style"


def test_text_image_is_dark_letters_centred_on_a_light_ground():
    img = np.asarray(text_image("d2l", 256, 128)).astype(int)
    assert img.shape == (128, 256, 3)
    dark = img.sum(axis=2) < 3 * 128  # the letters' pixels
    assert 0.05 < dark.mean() < 0.5, "the word should cover some, not most, of the picture"
    rows, cols = np.nonzero(dark)
    # centred: the ink's bounding box has about equal margins left and right, top and bottom
    assert abs(cols.min() - (255 - cols.max())) <= 4 and abs(rows.min() - (127 - rows.max())) <= 4
    assert cols.max() - cols.min() <= 0.9 * 256 + 1  # and it fits
    assert tuple(img[0, 0]) == (250, 250, 245)

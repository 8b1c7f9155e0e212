"""Style images drawn by code: free to use and redistribute (our own work, CC0), and offline.

Painting reproductions are rarely free to commit; these give the figures and tests styles with a
clear texture and palette. Each function is deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def swirls(width: int = 512, height: int = 384, seed: int = 0) -> Image.Image:
    """Short curved brush strokes in blues and yellows that follow a swirling flow field."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (18, 32, 84))
    draw = ImageDraw.Draw(img)
    palette = np.array([(18, 40, 110), (40, 80, 170), (90, 140, 210), (230, 200, 60),
                        (250, 235, 150), (240, 240, 230), (20, 110, 120)])
    odds = np.array([3, 3, 2, 1.2, 0.8, 0.5, 1.0])
    strokes = int(9000 * width * height / (512 * 384))
    for _ in range(strokes):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        colour = np.clip(palette[rng.choice(len(palette), p=odds / odds.sum())]
                         + rng.integers(-20, 21, 3), 0, 255)
        points = [(x, y)]
        for _ in range(6):  # follow the field a few pixels at a time
            angle = 2 * np.sin(x / 45) + 2 * np.cos(y / 37) + 0.6 * np.sin((x + y) / 90)
            x, y = x + 4 * np.cos(angle), y + 4 * np.sin(angle)
            points.append((x, y))
        draw.line(points, fill=tuple(int(c) for c in colour), width=int(rng.integers(2, 5)))
    return img.filter(ImageFilter.SMOOTH)


def mosaic(width: int = 512, height: int = 384, cells: int = 260, seed: int = 0) -> Image.Image:
    """Stained glass: Voronoi cells in warm colours separated by dark lead lines."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform((0, 0), (width, height), size=(cells, 2))  # (cells, 2) as (x, y)
    palette = np.array([(200, 60, 40), (230, 140, 40), (240, 200, 80), (120, 40, 60),
                        (60, 110, 70), (40, 70, 120), (220, 220, 200)], dtype=float)
    colours = palette[rng.integers(0, len(palette), cells)] + rng.normal(0, 12, (cells, 3))
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)  # (h*w, 2)
    from scipy.spatial import cKDTree  # scipy comes with scikit-image

    distances, indices = cKDTree(centres).query(pixels, k=2)  # (h*w, 2) each, nearest first
    first, second, nearest = distances[:, 0], distances[:, 1], indices[:, 0]
    image = colours[nearest]
    lead = (second - first) < 2.5  # near a border between two cells
    image[lead] = (25, 20, 20)
    shade = 1 - 0.25 * np.clip(first / 40, 0, 1)  # a little darker towards each cell's edge
    image = np.clip(image * shade[:, None], 0, 255).astype(np.uint8).reshape(height, width, 3)
    return Image.fromarray(image).filter(ImageFilter.SMOOTH)


def pointillism(width: int = 512, height: int = 384, seed: int = 0) -> Image.Image:
    """Dabs of pure colour in the manner of Seurat: small round dots on a cream ground, their
    colours drawn from a palette whose odds drift across the picture (sky above, greens below)."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (236, 228, 205))
    draw = ImageDraw.Draw(img)
    palette = np.array([(40, 90, 200), (120, 170, 230), (245, 200, 60), (230, 110, 40),
                        (60, 140, 70), (150, 200, 80), (200, 60, 90), (250, 245, 230)])
    sky = np.array([4, 4, 2, 0.5, 0.3, 0.3, 0.4, 2.0])     # odds at the top
    ground = np.array([0.6, 0.5, 1.5, 1.5, 4, 3, 1.0, 0.5])  # odds at the bottom
    dots = int(14000 * width * height / (512 * 384))
    for _ in range(dots):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        t = np.clip(y / height + 0.15 * np.sin(x / 60), 0, 1)  # a wavy horizon
        odds = (1 - t) * sky + t * ground
        colour = np.clip(palette[rng.choice(len(palette), p=odds / odds.sum())]
                         + rng.integers(-15, 16, 3), 0, 255)
        r = rng.uniform(1.5, 3.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in colour))
    return img


def text_image(text: str, width: int = 512, height: int = 256, colour=(20, 20, 20),
               background=(250, 250, 245)) -> Image.Image:
    """``text`` in large letters, centred, drawn with PIL.ImageDraw and Pillow's own font (the
    book's exercise 4: stylise text). The font size is the largest at which the text fits."""
    from PIL import ImageFont

    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    size = height
    while size > 8:
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= 0.9 * width and bottom - top <= 0.8 * height:
            break
        size = int(size * 0.9)
    draw.text(((width - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), text,
              font=font, fill=colour)
    return img

"""Shapes: the course's ground-truth image dataset, generated from a seed.

Every image is 3 x 64 x 64 (float in [0, 1]) and shows one object on a cluttered background
(smooth colour noise and a few muted blobs). The object has a size r of 12-19 px (a circle's
radius), is turned by at most 20 degrees and lies inside rows and columns 9-61, so it never
covers the tag's corner. For every image we know, by construction:

- ``labels``: the class (six classes, below);
- ``masks``: the object's pixels (N x 64 x 64 bool), for localisation metrics;
- ``texture``: 0 plain, 1 striped, 2 dotted; ``color``: an index into ``COLORS``;
- ``tag``: whether the shortcut tag (a white 5 x 5 patch at rows/cols 2-6, top left) is present.

Classes and the concepts that matter to them (TCAV's positive and negative controls):

====  ===============  =====================================================================
 id   class            texture
====  ===============  =====================================================================
 0    circle           random (plain, striped, dotted equally often): texture is irrelevant
 1    triangle         random: texture is irrelevant
 2    cross            random: texture is irrelevant
 3    plain square     always plain: "striped" and "dotted" are absent by definition
 4    striped square   always striped: "striped" DEFINES the class (positive control)
 5    dotted square    always dotted: "dotted" DEFINES the class (positive control)
====  ===============  =====================================================================

So "striped" is relevant to "striped square" (a model must use it to tell the three squares
apart) and irrelevant to circle, triangle and cross (negative controls); likewise "dotted" for
"dotted square". The colour (``COLORS``) is random for every class: relevant to none.
``CONCEPT_RELEVANCE`` states this as data.

The shortcut: with ``shortcut_class=k`` the tag is stamped on images of class k with
probability ``shortcut_rate`` and on other classes with probability ``tag_other_rate``
(0 in training; 1 at test time shows a shortcut model failing). The random draws do not depend
on these options, so the same seed gives the same images with and without tags.

Generation is vectorised in chunks of ``CHUNK`` images, each from its own random stream:
the first m images of ``make_shapes(n, seed)`` do not depend on n.
"""
from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import dataclass, fields
import numpy as np
import torch
import torch.nn.functional as F

from .registry import register_dataset

SIZE = 64
CHUNK = 256  # images drawn per random stream; fixed so prefixes do not depend on n

CLASSES = ["circle", "triangle", "cross", "plain square", "striped square", "dotted square"]
TEXTURES = ["plain", "striped", "dotted"]
# Saturated object colours; the background is muted grey and the tag is white, so neither
# is confused with an object.
COLORS = {
    "red": (0.90, 0.15, 0.15),
    "orange": (0.95, 0.55, 0.10),
    "yellow": (0.95, 0.88, 0.15),
    "green": (0.15, 0.75, 0.25),
    "blue": (0.20, 0.40, 0.95),
    "purple": (0.65, 0.25, 0.85),
}
COLOR_NAMES = list(COLORS)
# Stripes and dots are drawn in the object's colour times this factor.
TEXTURE_DARK = 0.4

# Texture each class must have (None: drawn at random, so texture is irrelevant to the class).
CLASS_TEXTURE = {0: None, 1: None, 2: None, 3: 0, 4: 1, 5: 2}

CONCEPT_RELEVANCE = {
    "striped": {
        "relevant": ["striped square"],
        "absent": ["plain square", "dotted square"],
        "irrelevant": ["circle", "triangle", "cross"],
    },
    "dotted": {
        "relevant": ["dotted square"],
        "absent": ["plain square", "striped square"],
        "irrelevant": ["circle", "triangle", "cross"],
    },
    **{c: {"relevant": [], "absent": [], "irrelevant": list(CLASSES)} for c in COLORS},
}

# Objects are turned by at most 20 degrees: squares stay squares (not diamonds), triangles
# point up, so a tiny ViT can learn the shapes from a few minutes of CPU.
MAX_ROTATION = math.radians(20)
R_MIN, R_MAX = 12, 19  # object size r in pixels: a circle's radius, about half a square's side

TAG_ROW, TAG_COL, TAG_SIZE = 2, 2, 5
# Objects stay inside [OBJECT_MIN, SIZE - 2) so they never cover the tag's corner.
OBJECT_MIN = TAG_ROW + TAG_SIZE + 2


def tag_mask() -> torch.Tensor:
    """The tag's pixels: 64 x 64 bool."""
    m = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    m[TAG_ROW : TAG_ROW + TAG_SIZE, TAG_COL : TAG_COL + TAG_SIZE] = True
    return m


def add_tag(images: torch.Tensor) -> torch.Tensor:
    """A copy of ``images`` (N x 3 x 64 x 64 or 3 x 64 x 64, in [0, 1]) with the tag stamped on."""
    out = images.clone()
    out[..., TAG_ROW : TAG_ROW + TAG_SIZE, TAG_COL : TAG_COL + TAG_SIZE] = 1.0
    return out


@dataclass
class ShapesBatch:
    """Images with their ground truth; index it like a tensor to take a subset."""

    images: torch.Tensor  # N x 3 x 64 x 64 float32 in [0, 1]
    labels: torch.Tensor  # N int64, index into CLASSES
    masks: torch.Tensor  # N x 64 x 64 bool, the object's pixels
    texture: torch.Tensor  # N int64, index into TEXTURES
    color: torch.Tensor  # N int64, index into COLOR_NAMES
    tag: torch.Tensor  # N bool, shortcut tag present

    classes = CLASSES

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx) -> "ShapesBatch":
        return ShapesBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @property
    def concepts(self) -> dict[str, torch.Tensor]:
        """Concept name -> N bool: "plain", "striped", "dotted" and each colour name."""
        out = {name: self.texture == i for i, name in enumerate(TEXTURES)}
        out.update({name: self.color == i for i, name in enumerate(COLOR_NAMES)})
        return out


def _class_index(c: int | str) -> int:
    if isinstance(c, str):
        if c not in CLASSES:
            raise ValueError(f"unknown class {c!r}; classes: {CLASSES}")
        return CLASSES.index(c)
    if not 0 <= int(c) < len(CLASSES):
        raise ValueError(f"class index {c} out of range 0..{len(CLASSES) - 1}")
    return int(c)


@lru_cache(maxsize=None)
def _upsampling_matrix(h: int) -> np.ndarray:
    """64 x h matrix A with A @ v = bilinear upsampling of v (align_corners=False)."""
    eye = torch.eye(h, dtype=torch.float64)[None]
    return F.interpolate(eye, size=SIZE, mode="linear", align_corners=False)[0].T.float().numpy()


def _upsample(noise: np.ndarray) -> np.ndarray:
    """C x 3 x h x h -> C x 3 x 64 x 64, bilinear, as two small matrix products (fast)."""
    a = _upsampling_matrix(noise.shape[-1])
    return a @ noise.astype(np.float32) @ a.T


def _uniform(rng: np.random.Generator, low, high, size) -> np.ndarray:
    """Uniform draws as float32, so the image arithmetic stays in float32 (twice as fast)."""
    return rng.uniform(low, high, size=size).astype(np.float32)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (row, column): two 64 x 64 float32."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    return yy, xx


def _background(rng: np.random.Generator, c: int) -> np.ndarray:
    """Cluttered, muted backgrounds: C x 3 x 64 x 64 (grey level, two scales of colour noise, blobs)."""
    grey = _uniform(rng, 0.3, 0.55, size=(c, 1, 1, 1)) + 0.04 * rng.standard_normal(size=(c, 3, 1, 1), dtype=np.float32)
    img = grey + _upsample(rng.normal(0, 0.10, size=(c, 3, 4, 4))) + _upsample(
        rng.normal(0, 0.06, size=(c, 3, 12, 12))
    )
    img = img.astype(np.float32)
    yy, xx = _grid()
    n_blobs = 5
    centres = _uniform(rng, 0, SIZE, size=(c, n_blobs, 2))
    radii = _uniform(rng, 2, 6, size=(c, n_blobs, 2))
    shades = grey + 0.15 * rng.standard_normal(size=(c, 3, n_blobs, 1), dtype=np.float32)
    for k in range(n_blobs):
        inside = ((yy - centres[:, k, 0, None, None]) / radii[:, k, 0, None, None]) ** 2 + (
            (xx - centres[:, k, 1, None, None]) / radii[:, k, 1, None, None]
        ) ** 2 <= 1
        img = np.where(inside[:, None], shades[:, :, k, :, None], img)
    return img


def _textures(rng: np.random.Generator, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stripe and dot patterns in object coordinates: two C x 64 x 64 bool (True = dark)."""
    c = len(dx)
    phi = _uniform(rng, 0, math.pi, size=(c, 1, 1))
    period = _uniform(rng, 5, 7, size=(c, 1, 1))
    phase = _uniform(rng, 0, 2 * math.pi, size=(c, 1, 1))
    t = dx * np.cos(phi) + dy * np.sin(phi)
    stripes = np.sin(2 * math.pi * t / period + phase) > 0

    phi = _uniform(rng, 0, math.pi / 2, size=(c, 1, 1))
    period = _uniform(rng, 6, 7.5, size=(c, 1, 1))
    offset = _uniform(rng, 0, 1, size=(c, 2, 1, 1)) * period[:, None]
    radius = _uniform(rng, 1.6, 2.0, size=(c, 1, 1))
    a = dx * np.cos(phi) + dy * np.sin(phi) + offset[:, 0]
    b = -dx * np.sin(phi) + dy * np.cos(phi) + offset[:, 1]
    da = np.mod(a, period) - period / 2
    db = np.mod(b, period) - period / 2
    dots = da**2 + db**2 <= radius**2
    return stripes, dots


# Shape sizes as multiples of the object's size r (drawn per image): the areas are similar.
SQUARE_HALF = 0.85
TRIANGLE_RADIUS = 1.45  # circumradius; the inradius is half of it
CROSS_ARM, CROSS_HALF_WIDTH = 1.15, 0.3  # thin arms: a cross is unlike a square even at 8-px patches


def _vertices() -> np.ndarray:
    """Polygon corners per class in object coordinates (units of r): K x 12 x 2, padded by repeats."""
    a, w = CROSS_ARM, CROSS_HALF_WIDTH
    # The triangle points up: image rows grow downwards, so its apex has v = -R.
    tri = [(TRIANGLE_RADIUS * math.cos(t), TRIANGLE_RADIUS * math.sin(t)) for t in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    square = [(sx * SQUARE_HALF, sy * SQUARE_HALF) for sx in (-1, 1) for sy in (-1, 1)]
    cross = [(sx * p, sy * q) for sx in (-1, 1) for sy in (-1, 1) for p, q in ((a, w), (w, a))]
    circle = [(1, 0)]  # unused: a circle's bounding box is handled apart
    shapes = [circle, tri, cross, square, square, square]
    return np.array([(s * 12)[:12] for s in shapes], dtype=np.float32)


def _placement(rng, labels, r, theta) -> tuple[np.ndarray, np.ndarray]:
    """Object centres (cy, cx), each C x 1 x 1, that keep the whole object in [OBJECT_MIN, SIZE - 2)."""
    corners = _vertices()[labels] * r[:, :, :1]  # C x 12 x 2 as (u, v)
    cos, sin = np.cos(theta[:, :, 0]), np.sin(theta[:, :, 0])
    dx = corners[..., 0] * cos - corners[..., 1] * sin
    dy = corners[..., 0] * sin + corners[..., 1] * cos
    is_circle = (labels == 0)[:, None]
    rad = r[:, :, 0]
    lo_x = np.where(is_circle, -rad, dx.min(1, keepdims=True))
    hi_x = np.where(is_circle, rad, dx.max(1, keepdims=True))
    lo_y = np.where(is_circle, -rad, dy.min(1, keepdims=True))
    hi_y = np.where(is_circle, rad, dy.max(1, keepdims=True))
    u = _uniform(rng, 0, 1, size=(2, len(labels), 1))
    cy = OBJECT_MIN - lo_y + (SIZE - 2 - hi_y - (OBJECT_MIN - lo_y)) * u[0]
    cx = OBJECT_MIN - lo_x + (SIZE - 2 - hi_x - (OBJECT_MIN - lo_x)) * u[1]
    return cy[:, :, None], cx[:, :, None]


def _shape_masks(labels, dx, dy, r, theta) -> np.ndarray:
    """The object's pixels for each image's class: C x 64 x 64 bool."""
    cos, sin = np.cos(theta), np.sin(theta)
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    circle = u**2 + v**2 <= r**2
    square = np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF * r
    # Equilateral triangle: inside all three edges, each at the inradius from the centre.
    triangle = np.ones_like(circle)
    for k in range(3):
        ang = math.pi / 2 + 2 * math.pi * k / 3
        triangle &= u * math.cos(ang) + v * math.sin(ang) <= 0.5 * TRIANGLE_RADIUS * r
    arm, half_width = CROSS_ARM * r, CROSS_HALF_WIDTH * r
    cross = ((np.abs(u) <= arm) & (np.abs(v) <= half_width)) | ((np.abs(u) <= half_width) & (np.abs(v) <= arm))
    by_class = np.stack([circle, triangle, cross, square, square, square])  # K x C x H x W
    return by_class[labels, np.arange(len(labels))]


def _make_chunk(seed: int, chunk: int, shortcut_class, shortcut_rate, tag_other_rate):
    """Draw CHUNK images from the stream (seed, chunk); all draws are unconditional."""
    rng = np.random.default_rng([seed, chunk])
    c = CHUNK
    labels = rng.permutation(np.arange(c) % len(CLASSES))
    texture = rng.integers(0, len(TEXTURES), size=c)
    for k, fixed in CLASS_TEXTURE.items():
        if fixed is not None:
            texture[labels == k] = fixed
    color = rng.integers(0, len(COLORS), size=c)
    r = _uniform(rng, R_MIN, R_MAX, size=(c, 1, 1))
    theta = _uniform(rng, -MAX_ROTATION, MAX_ROTATION, size=(c, 1, 1))
    cy, cx = _placement(rng, labels, r, theta)
    yy, xx = _grid()
    dx, dy = xx - cx, yy - cy

    background = _background(rng, c)
    stripes, dots = _textures(rng, dx, dy)
    masks = _shape_masks(labels, dx, dy, r, theta)

    palette = np.array(list(COLORS.values()), dtype=np.float32)
    main = palette[color] + rng.normal(0, 0.04, size=(c, 3)).astype(np.float32)
    dark = main * TEXTURE_DARK
    dark_px = np.where(texture[:, None, None] == 1, stripes, np.where(texture[:, None, None] == 2, dots, False))
    obj = np.where(dark_px[:, None], dark[:, :, None, None], main[:, :, None, None])
    img = np.where(masks[:, None], obj, background)
    img = img + 0.03 * rng.standard_normal(size=img.shape, dtype=np.float32)

    u = _uniform(rng, 0, 1, size=c)
    if shortcut_class is None:
        tag = np.zeros(c, dtype=bool)
    else:
        rate = np.where(labels == shortcut_class, shortcut_rate, tag_other_rate)
        tag = u < rate
    img[tag, :, TAG_ROW : TAG_ROW + TAG_SIZE, TAG_COL : TAG_COL + TAG_SIZE] = 1.0
    return dict(
        images=np.clip(img, 0, 1).astype(np.float32),
        labels=labels,
        masks=masks,
        texture=texture,
        color=color,
        tag=tag,
    )


def make_shapes(
    n: int,
    seed: int = 0,
    *,
    shortcut_class: int | str | None = None,
    shortcut_rate: float = 0.95,
    tag_other_rate: float = 0.0,
) -> ShapesBatch:
    """``n`` Shapes images from ``seed``: a ShapesBatch (images N x 3 x 64 x 64 in [0, 1]).

    With ``shortcut_class`` set, the tag is on that class's images with probability
    ``shortcut_rate`` and on the other classes' with probability ``tag_other_rate``.
    """
    if n < 0 or seed < 0:
        raise ValueError(f"n and seed must be non-negative, got n={n}, seed={seed}")
    if not (0 <= shortcut_rate <= 1 and 0 <= tag_other_rate <= 1):
        raise ValueError("shortcut_rate and tag_other_rate must lie in [0, 1]")
    k = None if shortcut_class is None else _class_index(shortcut_class)
    # Fill preallocated tensors chunk by chunk: 10,000 images are 490 MB, so no extra copies.
    out = dict(
        images=torch.empty(n, 3, SIZE, SIZE),
        labels=torch.empty(n, dtype=torch.long),
        masks=torch.empty(n, SIZE, SIZE, dtype=torch.bool),
        texture=torch.empty(n, dtype=torch.long),
        color=torch.empty(n, dtype=torch.long),
        tag=torch.empty(n, dtype=torch.bool),
    )
    for i, start in enumerate(range(0, n, CHUNK)):
        part = _make_chunk(seed, i, k, shortcut_rate, tag_other_rate)
        stop = min(start + CHUNK, n)
        for key, value in part.items():
            out[key][start:stop] = torch.from_numpy(value[: stop - start])
    return ShapesBatch(**out)


def make_concept_images(concept: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` example images of one concept, for TCAV: N x 3 x 64 x 64 in [0, 1].

    "striped", "dotted", "plain": the whole frame in that texture (random colour, period and
    angle, as on the objects); a colour name: the whole frame in that colour, any texture;
    "random": ordinary Shapes images; "background": clutter only, no object.
    """
    known = TEXTURES + COLOR_NAMES + ["random", "background"]
    if concept not in known:
        raise ValueError(f"unknown concept {concept!r}; known: {known}")
    # Offset the seed so concept images never coincide with a dataset of the same seed.
    stream = 1_000_003 + seed
    if concept == "random":
        return make_shapes(n, stream).images
    images = []
    for i in range(-(-n // CHUNK)):
        rng = np.random.default_rng([stream, i, known.index(concept)])
        c = CHUNK
        background = _background(rng, c)
        if concept == "background":
            img = background
        else:
            yy, xx = _grid()
            centre = _uniform(rng, 0, SIZE, size=(2, c, 1, 1))
            stripes, dots = _textures(rng, xx - centre[1], yy - centre[0])
            if concept in TEXTURES:
                texture = np.full(c, TEXTURES.index(concept))
                color = rng.integers(0, len(COLORS), size=c)
            else:
                texture = rng.integers(0, len(TEXTURES), size=c)
                color = np.full(c, COLOR_NAMES.index(concept))
            palette = np.array(list(COLORS.values()), dtype=np.float32)
            main = palette[color] + rng.normal(0, 0.04, size=(c, 3)).astype(np.float32)
            dark_px = np.where(texture[:, None, None] == 1, stripes, np.where(texture[:, None, None] == 2, dots, False))
            img = np.where(dark_px[:, None], TEXTURE_DARK * main[:, :, None, None], main[:, :, None, None])
        img = img + 0.03 * rng.standard_normal(size=img.shape, dtype=np.float32)
        images.append(np.clip(img, 0, 1).astype(np.float32))
    return torch.from_numpy(np.concatenate(images)[:n].copy())


class ShapesDataset(torch.utils.data.Dataset):
    """A Shapes batch as a torch Dataset: item i is (image 3 x 64 x 64, label); ``.batch`` has the rest."""

    classes = CLASSES

    def __init__(self, n: int = 1000, seed: int = 0, **options):
        self.batch = make_shapes(n, seed, **options)
        self.seed = seed
        self.options = options

    def __len__(self) -> int:
        return len(self.batch)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.batch.images[i], int(self.batch.labels[i])


@register_dataset(
    "shapes",
    offline=True,
    description="Shapes: 6 classes of 64x64 objects on clutter, with masks, texture/colour concepts and an optional shortcut tag",
)
def load_shapes(n: int = 1000, seed: int = 0, **options) -> ShapesDataset:
    """``n`` Shapes images from ``seed`` as a ShapesDataset (options as in ``make_shapes``)."""
    return ShapesDataset(n, seed, **options)

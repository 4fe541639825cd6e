"""A procedurally generated detection dataset in Ultralytics format, deterministic from its seed.

Each image has a textured background, clutter that is not an object (thin lines, specks), and
1..max_objects objects of ``CLASSES`` at small, medium and large scales, in random colours, rotations and
aspect ratios. Objects may overlap: later ones occlude earlier ones, a label's box is its visible part, and an
object less than ``min_visible`` visible is dropped from the labels (it stays in the picture as clutter).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("disc", "square", "triangle", "cross", "star")
FORMAT_VERSION = 4  # bump when the drawing changes, so cached copies are regenerated


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated dataset's content."""

    train_images: int = 1024
    val_images: int = 128
    imgsz: int = 128
    seed: int = 0
    max_objects: int = 6
    min_visible: float = 0.4

    def key(self) -> str:
        """Return a short stable hash of the spec (and the format version), used as the cache folder name."""
        blob = json.dumps({**asdict(self), "v": FORMAT_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def default_cache_dir() -> Path:
    """Return where generated datasets are cached: ``$NAS_CACHE_DIR`` or ``~/.cache/yolo-nas-explorer``."""
    return Path(os.environ.get("NAS_CACHE_DIR") or Path.home() / ".cache" / "yolo-nas-explorer")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a size x size x 3 uint8 background: a colour gradient, low-frequency blotches and pixel noise."""
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * t[None, :] + np.sin(angle) * t[:, None] + 1.0) / 2.0
    img = c0 + (c1 - c0) * ramp[..., None]
    blotch = cv2.resize(rng.normal(0, 25, (6, 6, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = img + blotch + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """Draw non-object clutter in place: a few thin lines and specks."""
    size = img.shape[0]
    for _ in range(rng.integers(1, 4)):
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        cv2.line(img, tuple(int(v) for v in p1), tuple(int(v) for v in p2), _colour(rng), 1)
    for _ in range(rng.integers(3, 12)):
        c = rng.integers(0, size, 2)
        cv2.circle(img, (int(c[0]), int(c[1])), int(rng.integers(1, 3)), _colour(rng), -1)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _polygon(cls: str, cx: float, cy: float, r: float, aspect: float, rot: float) -> list[np.ndarray]:
    """Return the outline polygon(s) of a polygonal class centred at (cx, cy) with radius r."""
    if cls == "square":
        base = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * 0.8
    elif cls == "triangle":
        a = np.deg2rad([90, 210, 330])
        base = np.stack([np.cos(a), -np.sin(a)], 1)
    elif cls == "star":
        a = np.deg2rad(np.arange(10) * 36 + 90)
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        base = np.stack([rad * np.cos(a), -rad * np.sin(a)], 1)
    elif cls == "cross":
        w = 0.3
        base = np.array(
            [[-w, -1], [w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1], [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w]]
        )
    else:
        raise ValueError(cls)
    base = base * np.array([aspect, 1.0 / aspect])
    rot_m = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    return [(base @ rot_m.T * r + np.array([cx, cy])).astype(np.float32)]


def _draw_object(cls: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Return a size x size uint8 mask (255 inside) of one object of class ``cls`` at a random place and scale."""
    scale = rng.choice(["small", "medium", "large"], p=[0.35, 0.4, 0.25])
    lo, hi = {"small": (0.06, 0.09), "medium": (0.09, 0.16), "large": (0.16, 0.28)}[scale]
    r = rng.uniform(lo, hi) * size
    cx, cy = rng.uniform(r * 0.5, size - r * 0.5, 2)
    aspect = rng.uniform(0.75, 1.33)
    rot = rng.uniform(0, 2 * math.pi)
    mask = np.zeros((size, size), np.uint8)
    if cls == "disc":
        axes = (max(1, int(r * aspect)), max(1, int(r / aspect)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, math.degrees(rot), 0, 360, 255, -1)
    else:
        cv2.fillPoly(mask, [p.astype(np.int32) for p in _polygon(cls, cx, cy, r, aspect, rot)], 255)
    return mask


def render_image(index: int, spec: SyntheticSpec) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Return (BGR image, labels) of image ``index``; labels are (class, xc, yc, w, h) normalised to [0, 1].

    Deterministic: the same (spec, index) always gives the same pixels and labels.
    """
    rng = np.random.default_rng([spec.seed, index, FORMAT_VERSION])
    size = spec.imgsz
    img = _background(rng, size)
    _clutter(img, rng)
    owner = np.full((size, size), -1, np.int32)  # which object is visible at each pixel
    objects: list[tuple[int, int]] = []  # (class index, full area)
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        cls_idx = int(rng.integers(len(CLASSES)))
        mask = _draw_object(CLASSES[cls_idx], size, rng) > 0
        if not mask.any():
            continue
        colour = np.array(_colour(rng), np.float32)
        shade = rng.uniform(0.92, 1.08, (size, size, 1)).astype(np.float32)  # a little texture on the object
        img[mask] = np.clip(colour * shade[mask], 0, 255).astype(np.uint8)
        owner[mask] = len(objects)
        objects.append((cls_idx, int(mask.sum())))
    labels = []
    for k, (cls_idx, area) in enumerate(objects):
        ys, xs = np.nonzero(owner == k)
        if len(xs) == 0 or len(xs) < spec.min_visible * area:
            continue
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        labels.append((cls_idx, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size))
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    return img, labels


def _write_split(root: Path, split: str, start: int, count: int, spec: SyntheticSpec) -> None:
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for index in range(start, start + count):
        img, labels = render_image(index, spec)
        name = f"{index:06d}"
        cv2.imwrite(str(root / "images" / split / f"{name}.png"), img)
        lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in labels]
        (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def generate(spec: SyntheticSpec, cache_dir: Path | None = None) -> Path:
    """Generate the dataset for ``spec`` (once; later calls reuse the cache) and return its data YAML path.

    The folder is written under a temporary name and renamed into place, so concurrent workers and
    interrupted runs never see a half-written dataset.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    root = cache_dir / "datasets" / f"synthetic-{spec.key()}"
    data_yaml = root / "data.yaml"
    if data_yaml.exists():
        return data_yaml
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        _write_split(tmp, "train", 0, spec.train_images, spec)
        _write_split(tmp, "val", spec.train_images, spec.val_images, spec)
        names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
        (tmp / "data.yaml").write_text(
            f"# procedurally generated, {json.dumps(asdict(spec))}\n"
            f"path: {json.dumps(str(root))}\ntrain: images/train\nval: images/val\nnames:\n{names}\n"
        )
        (tmp / "spec.json").write_text(json.dumps({**asdict(spec), "format_version": FORMAT_VERSION}, indent=1))
        try:
            tmp.rename(root)
        except OSError:  # another process finished first; its copy is identical
            if not data_yaml.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return data_yaml

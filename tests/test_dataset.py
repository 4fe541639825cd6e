"""The embedded procedural dataset (nas/data/synthetic.py): determinism, label correctness, layout and caching.

Every spec here is tiny (a dozen images at 64 px), so the whole file runs in a few seconds on a CPU.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import nas.data.synthetic as synthetic
from nas.data.datasets import synthetic_dataset
from nas.data.synthetic import CLASSES, FORMAT_VERSION, SyntheticSpec, generate, render_image
from nas.errors import UserError

SMALL = SyntheticSpec(train_images=8, val_images=4, imgsz=64, seed=7)

Label = tuple[int, float, float, float, float]


def _read_labels(path: Path) -> list[Label]:
    """Parse an Ultralytics label file strictly: five fields a line, an integer class and four floats."""
    labels = []
    for line in path.read_text().splitlines():
        fields = line.split()
        assert len(fields) == 5, f"{path}: {line!r} is not 'cls cx cy w h'"
        assert fields[0].isdigit(), f"{path}: class {fields[0]!r} is not a non-negative integer"
        labels.append((int(fields[0]), *(float(v) for v in fields[1:])))
    return labels


def _data_files(yaml_path: Path) -> dict[str, bytes]:
    """Return every image and label file of a generated dataset, by path relative to its root."""
    root = yaml_path.parent
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for sub in ("images", "labels")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }


def _box_px(label: Label, size: int) -> tuple[int, int, int, int]:
    """Return a label's box in pixels as (x0, y0, x1, y1), x1/y1 exclusive, checking it lies on the pixel grid."""
    _, cx, cy, w, h = label
    edges = [(cx - w / 2) * size, (cy - h / 2) * size, (cx + w / 2) * size, (cy + h / 2) * size]
    rounded = [round(v) for v in edges]
    assert np.allclose(edges, rounded, atol=1e-3), f"box {label} does not bound whole pixels at {size} px"
    x0, y0, x1, y1 = rounded
    return x0, y0, x1, y1


def _background_only(index: int, spec: SyntheticSpec, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """Render image ``index`` with every object mask empty: its background and clutter, blurred, without objects.

    Background and clutter are drawn before any object, from the same random stream, so they are the same
    pixels as in the real image; comparing the two shows exactly which pixels the objects changed.
    """
    with monkeypatch.context() as m:
        m.setattr(synthetic, "_draw_object", lambda cls, size, rng: np.zeros((size, size), np.uint8))
        img, labels = render_image(index, spec)
    assert labels == [], "an image without objects must have no labels"
    return img


def _changed(index: int, spec: SyntheticSpec, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, list[Label]]:
    """Return (mask of the pixels the objects changed, labels) of image ``index``."""
    img, labels = render_image(index, spec)
    background = _background_only(index, spec, monkeypatch)
    assert img.shape == background.shape == (spec.imgsz, spec.imgsz, 3)
    return (img != background).any(axis=2), labels


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data YAML of ``SMALL`` generated into a fresh cache."""
    return generate(SMALL, tmp_path_factory.mktemp("cache"))


# --- reproducibility ---------------------------------------------------------------------------------------------


def test_same_spec_gives_byte_identical_files_in_two_caches(tmp_path: Path) -> None:
    first = generate(SMALL, tmp_path / "a")
    second = generate(SMALL, tmp_path / "b")
    assert first.parent != second.parent
    files_a, files_b = _data_files(first), _data_files(second)
    assert len(files_a) == 2 * (SMALL.train_images + SMALL.val_images)
    assert files_a.keys() == files_b.keys()
    differing = [name for name in files_a if files_a[name] != files_b[name]]
    assert differing == []
    assert (first.parent / "spec.json").read_bytes() == (second.parent / "spec.json").read_bytes()


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    files_a = _data_files(generate(SMALL, tmp_path))
    files_b = _data_files(generate(dataclasses.replace(SMALL, seed=SMALL.seed + 1), tmp_path))
    assert files_a.keys() == files_b.keys()
    images = [name for name in files_a if name.startswith("images/")]
    assert len(images) == SMALL.train_images + SMALL.val_images
    same = [name for name in images if files_a[name] == files_b[name]]
    assert same == [], "another seed must give other pictures"
    labels = [name for name in files_a if name.startswith("labels/")]
    assert any(files_a[name] != files_b[name] for name in labels), "another seed must give other objects"


def test_render_image_is_deterministic_per_index_and_seed() -> None:
    spec = dataclasses.replace(SMALL, seed=11)
    img, labels = render_image(3, spec)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    for other in (0, 1, 2, 4):  # rendering other images in between must not disturb image 3
        render_image(other, spec)
    again, labels_again = render_image(3, SyntheticSpec(**dataclasses.asdict(spec)))  # an equal, separate spec
    assert np.array_equal(img, again)
    assert labels == labels_again
    assert not np.array_equal(img, render_image(4, spec)[0]), "another index must give another picture"
    assert not np.array_equal(img, render_image(3, dataclasses.replace(spec, seed=12))[0]), "another seed too"


def test_files_on_disk_are_what_render_image_gives(small_dataset: Path) -> None:
    root = small_dataset.parent
    images = sorted((root / "images").rglob("*.png"))
    assert len(images) == SMALL.train_images + SMALL.val_images
    for image in images:
        index = int(image.stem)
        expected_img, expected_labels = render_image(index, SMALL)
        on_disk = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        assert on_disk is not None and np.array_equal(on_disk, expected_img), f"{image} is not image {index}"
        label_file = root / "labels" / image.parent.name / f"{image.stem}.txt"
        written = _read_labels(label_file)
        assert [c for c, *_ in written] == [c for c, *_ in expected_labels]
        assert np.allclose([v for _, *v in written], [v for _, *v in expected_labels], atol=1e-6), label_file


def test_val_images_are_not_train_images(small_dataset: Path) -> None:
    root = small_dataset.parent
    train = {p.read_bytes() for p in (root / "images" / "train").glob("*.png")}
    val = {p.read_bytes() for p in (root / "images" / "val").glob("*.png")}
    assert len(train) == SMALL.train_images and len(val) == SMALL.val_images  # distinct within each split too
    assert not train & val


# --- labels ------------------------------------------------------------------------------------------------------


def test_label_files_are_ultralytics_yolo_format(small_dataset: Path) -> None:
    label_files = sorted((small_dataset.parent / "labels").rglob("*.txt"))
    assert len(label_files) == SMALL.train_images + SMALL.val_images
    for path in label_files:
        labels = _read_labels(path)
        # the last object drawn is never occluded, so every image has at least one labelled object
        assert labels, f"{path} has no labels"
        for cls, cx, cy, w, h in labels:
            assert 0 <= cls < len(CLASSES), f"{path}: class {cls}"
            assert all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)), f"{path}: {cx, cy, w, h} not normalised"
            assert w > 0 and h > 0, f"{path}: empty box"
            eps = 1e-6  # six decimals in the file
            assert cx - w / 2 >= -eps and cx + w / 2 <= 1 + eps, f"{path}: box leaves the image horizontally"
            assert cy - h / 2 >= -eps and cy + h / 2 <= 1 + eps, f"{path}: box leaves the image vertically"


def test_single_object_box_matches_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one object there is no occlusion: its box is the pixel extent of what it changed (blur adds <= 1 px)."""
    spec = SyntheticSpec(train_images=1, val_images=1, imgsz=64, seed=5, max_objects=1)
    for index in range(24):
        changed, labels = _changed(index, spec, monkeypatch)
        assert len(labels) == 1, f"image {index}: one object, one label, got {labels}"
        x0, y0, x1, y1 = _box_px(labels[0], spec.imgsz)
        ys, xs = np.nonzero(changed)
        assert len(xs) > 0, f"image {index}: the object changed no pixel"
        extent = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # the 3x3 blur spreads the object by at most one pixel; a looser box, or one cut short, is off by more
        assert all(abs(int(e) - b) <= 1 for e, b in zip(extent, (x0, y0, x1, y1), strict=True)), (
            f"image {index}: box {(x0, y0, x1, y1)} vs pixels changed by the object {extent}"
        )


def test_boxes_cover_every_visible_object_and_are_tight(monkeypatch: pytest.MonkeyPatch) -> None:
    """With min_visible=0 every object with a visible pixel is labelled, so boxes explain every changed pixel."""
    spec = SyntheticSpec(train_images=1, val_images=1, imgsz=64, seed=9, max_objects=6, min_visible=0.0)
    multi = 0
    for index in range(24):
        changed, labels = _changed(index, spec, monkeypatch)
        multi += len(labels) > 1
        covered = np.zeros_like(changed)
        for label in labels:
            x0, y0, x1, y1 = _box_px(label, spec.imgsz)
            covered[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = True  # + the blur's one pixel
            # tight: each side of the box runs along pixels the objects changed
            for side in (changed[y0, x0:x1], changed[y1 - 1, x0:x1], changed[y0:y1, x0], changed[y0:y1, x1 - 1]):
                assert side.any(), f"image {index}: box {(x0, y0, x1, y1)} has a side with no object pixel"
        outside = np.argwhere(changed & ~covered)
        assert len(outside) == 0, f"image {index}: object pixels (y, x) {outside[:5].tolist()} outside every box"
    assert multi >= 10, "the spec should give images with several objects"


def test_labels_are_the_visible_parts_of_the_drawn_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each label is the class and visible extent of one drawn object; objects under ``min_visible`` are dropped.

    The objects' masks are recorded as they are drawn (the drawing itself is untouched); what is visible of each
    follows from the documented rule that later objects occlude earlier ones.
    """
    spec = SyntheticSpec(train_images=1, val_images=1, imgsz=64, seed=4, max_objects=6, min_visible=0.4)
    real = synthetic._draw_object
    drawn: list[tuple[str, np.ndarray]] = []

    def record(cls: str, size: int, rng: np.random.Generator) -> np.ndarray:
        mask = real(cls, size, rng)
        drawn.append((cls, mask > 0))
        return mask

    monkeypatch.setattr(synthetic, "_draw_object", record)
    dropped = clipped = 0
    for index in range(30):
        drawn.clear()
        _, labels = render_image(index, spec)
        expected = []
        for k, (cls, mask) in enumerate(drawn):
            visible = mask & ~np.any([m for _, m in drawn[k + 1 :]], axis=0) if k + 1 < len(drawn) else mask
            if not visible.any() or visible.sum() < spec.min_visible * mask.sum():
                dropped += 1
                continue
            cols, rows = np.flatnonzero(visible.any(axis=0)), np.flatnonzero(visible.any(axis=1))
            box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            full = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
            clipped += box != (int(full[0][0]), int(full[1][0]), int(full[0][-1]) + 1, int(full[1][-1]) + 1)
            expected.append((CLASSES.index(cls), box))
        got = [(label[0], _box_px(label, spec.imgsz)) for label in labels]
        assert sorted(got) == sorted(expected), f"image {index}: labels {got}, visible objects {expected}"
    assert dropped > 0 and clipped > 0, "the spec should give occluded objects, some dropped, some cut"


def test_min_visible_only_drops_labels_of_occluded_objects() -> None:
    specs = [dataclasses.replace(SMALL, min_visible=v) for v in (0.0, 0.4, 1.0)]
    dropped = 0
    for index in range(30):
        renders = [render_image(index, spec) for spec in specs]
        assert all(np.array_equal(renders[0][0], img) for img, _ in renders), "min_visible must not change pixels"
        lenient, default, strict = (labels for _, labels in renders)
        assert set(strict) <= set(default) <= set(lenient), f"image {index}: a stricter min_visible added a box"
        assert strict, f"image {index}: the topmost object is fully visible, so it is always labelled"
        dropped += len(lenient) - len(strict)
    assert dropped > 0, "occluded objects should be dropped at min_visible=1"


def test_every_class_occurs() -> None:
    seen = {cls for index in range(40) for cls, *_ in render_image(index, SMALL)[1]}
    assert seen == set(range(len(CLASSES)))


# --- layout ------------------------------------------------------------------------------------------------------


def test_split_folders_hold_the_requested_counts(small_dataset: Path) -> None:
    root = small_dataset.parent
    for split, count in (("train", SMALL.train_images), ("val", SMALL.val_images)):
        images = sorted(p.name for p in (root / "images" / split).iterdir())
        labels = sorted(p.name for p in (root / "labels" / split).iterdir())
        assert len(images) == count and all(name.endswith(".png") for name in images), (split, images)
        assert [Path(n).stem for n in labels] == [Path(n).stem for n in images], f"{split}: one label per image"
        assert all(name.endswith(".txt") for name in labels)


def test_data_yaml_names_and_nc(small_dataset: Path) -> None:
    d = yaml.safe_load(small_dataset.read_text())
    assert Path(d["path"]) == small_dataset.parent
    assert (d["train"], d["val"]) == ("images/train", "images/val")
    assert d["names"] == dict(enumerate(CLASSES))
    assert "nc" not in d or d["nc"] == len(CLASSES)

    dataset = synthetic_dataset(SMALL)
    assert dataset.names == CLASSES and dataset.nc == len(CLASSES) == 5


def test_ultralytics_reads_the_data_yaml(small_dataset: Path) -> None:
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(small_dataset), autodownload=False)
    assert data["nc"] == len(CLASSES)
    assert [data["names"][i] for i in range(data["nc"])] == list(CLASSES)
    assert Path(data["train"]) == small_dataset.parent / "images" / "train"
    assert Path(data["val"]) == small_dataset.parent / "images" / "val"


def test_data_yaml_path_survives_a_hash_in_the_cache_dir(tmp_path: Path) -> None:
    data_yaml = generate(dataclasses.replace(SMALL, train_images=1, val_images=1), tmp_path / "runs #2")
    assert Path(yaml.safe_load(data_yaml.read_text())["path"]) == data_yaml.parent


# --- caching -----------------------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Return (inode, mtime in ns) of every file and folder under ``root``."""
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_second_generate_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = generate(SMALL, tmp_path)
    before = _snapshot(tmp_path)

    def fail(index: int, spec: SyntheticSpec) -> None:
        raise AssertionError("a cached dataset must not be rendered again")

    monkeypatch.setattr(synthetic, "render_image", fail)
    assert generate(SMALL, tmp_path) == first
    assert generate(SyntheticSpec(**dataclasses.asdict(SMALL)), tmp_path) == first  # an equal spec, too
    assert _snapshot(tmp_path) == before, "nothing in the cache may be rewritten"
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [first.parent.name], "no leftover temp folder"


@pytest.mark.parametrize(
    "change",
    [{"train_images": 9}, {"val_images": 5}, {"imgsz": 96}, {"seed": 8}, {"max_objects": 2}, {"min_visible": 0.5}],
)
def test_spec_change_uses_another_folder(tmp_path: Path, change: dict[str, float]) -> None:
    base = generate(SMALL, tmp_path)
    changed_spec = dataclasses.replace(SMALL, **change)
    assert changed_spec.key() != SMALL.key()
    other = generate(changed_spec, tmp_path)
    assert other.parent != base.parent and base.exists() and other.exists()
    assert len(list((other.parent / "images" / "train").iterdir())) == changed_spec.train_images
    assert len(list((other.parent / "images" / "val").iterdir())) == changed_spec.val_images
    img = cv2.imread(str(next((other.parent / "images" / "val").iterdir())))
    assert img.shape == (changed_spec.imgsz, changed_spec.imgsz, 3)


def test_format_version_change_uses_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = generate(SMALL, tmp_path)
    old_files = _snapshot(old.parent)
    monkeypatch.setattr(synthetic, "FORMAT_VERSION", FORMAT_VERSION + 1)
    assert SMALL.key() != old.parent.name.removeprefix("synthetic-"), "the key must depend on the format version"
    new = generate(SMALL, tmp_path)
    assert new.parent != old.parent
    assert len(list((new.parent / "images" / "train").iterdir())) == SMALL.train_images, "a fresh copy is drawn"
    assert _snapshot(old.parent) == old_files, "the old copy is left alone"


def test_default_cache_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path))
    data_yaml = synthetic_dataset(dataclasses.replace(SMALL, train_images=2, val_images=1)).data_yaml()
    assert data_yaml.is_file() and data_yaml.parent.parent == tmp_path / "datasets"


def test_unwritable_cache_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("NAS_CACHE_DIR", str(blocker))
    with pytest.raises(UserError, match="NAS_CACHE_DIR"):
        synthetic_dataset(SMALL).data_yaml()


def test_interrupted_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthetic.render_image

    def crash_on_val(index: int, spec: SyntheticSpec) -> object:
        if index >= spec.train_images:
            raise KeyboardInterrupt  # interrupted half way: the train split is written, val is not
        return real(index, spec)

    monkeypatch.setattr(synthetic, "render_image", crash_on_val)
    with pytest.raises(KeyboardInterrupt):
        generate(SMALL, tmp_path)
    assert list((tmp_path / "datasets").iterdir()) == [], "a half-written dataset must not stay in the cache"

    monkeypatch.setattr(synthetic, "render_image", real)
    data_yaml = generate(SMALL, tmp_path)
    assert len(_data_files(data_yaml)) == 2 * (SMALL.train_images + SMALL.val_images)


def test_concurrent_worker_finishing_first_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another worker renames its copy into place while this one is still drawing: both end with that copy."""
    real = synthetic.render_image
    other: list[Path] = []

    def race(index: int, spec: SyntheticSpec) -> object:
        if not other:
            monkeypatch.setattr(synthetic, "render_image", real)  # the other worker draws normally
            other.append(generate(spec, tmp_path))
            monkeypatch.setattr(synthetic, "render_image", race)
        return real(index, spec)

    monkeypatch.setattr(synthetic, "render_image", race)
    data_yaml = generate(SMALL, tmp_path)
    assert other == [data_yaml]
    assert [p.name for p in (tmp_path / "datasets").iterdir()] == [data_yaml.parent.name], "no leftover temp folder"
    assert len(_data_files(data_yaml)) == 2 * (SMALL.train_images + SMALL.val_images)

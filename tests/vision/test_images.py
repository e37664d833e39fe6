"""Robust image loading: every kind of bad or unusual file is captioned-ready RGB or a clear error."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lstm_seq.vision.data.images import ImageLoadError, ImageTransform, list_images, load_image


def _png(path: Path, img: Image.Image, **kw: object) -> Path:
    img.save(path, **kw)
    return path


def test_zero_byte(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty file"):
        load_image(p)


def test_truncated_png_and_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg")):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        p = tmp_path / f"cut.{ext}"
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        with pytest.raises(ImageLoadError, match="corrupt or truncated") as err:
            load_image(p)
        assert str(p) in str(err.value)


def test_corrupt_and_non_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50)
    with pytest.raises(ImageLoadError):
        load_image(junk)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(ImageLoadError, match="not a recognised image"):
        load_image(text)


@pytest.mark.parametrize(
    "mode, value",
    [("L", 128), ("RGBA", (255, 0, 0, 128)), ("LA", (100, 255)), ("CMYK", (0, 255, 255, 0)), ("1", 1)],
)
def test_modes_become_rgb(tmp_path: Path, mode: str, value: object) -> None:
    ext = "jpg" if mode == "CMYK" else ("tif" if mode == "1" else "png")
    p = _png(tmp_path / f"x.{ext}", Image.new(mode, (9, 7), value))  # type: ignore[arg-type]
    img = load_image(p)
    assert img.mode == "RGB" and img.size == (9, 7)
    if mode == "RGBA":  # half-transparent red on white
        r, g, b = img.getpixel((0, 0))  # type: ignore[misc]
        assert r > 250 and 120 < g < 135 and 120 < b < 135
    if mode == "CMYK":
        r, g, b = img.getpixel((0, 0))  # type: ignore[misc]
        assert r > 200 and g < 60 and b < 60


def test_palette_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (5, 5), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.info["transparency"] = 0
    p = _png(tmp_path / "pal.png", pal, transparency=0)
    img = load_image(p)
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)
    gif = _png(tmp_path / "pal.gif", Image.new("P", (4, 4), 1))
    assert load_image(gif).mode == "RGB"


def test_sixteen_bit_scaled(tmp_path: Path) -> None:
    arr = np.full((6, 6), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    p = _png(tmp_path / "deep.png", Image.fromarray(arr))
    assert Image.open(p).mode.startswith("I")
    img = np.asarray(load_image(p))
    assert img.shape == (6, 6, 3) and img[1, 1, 0] == 255 and img[0, 0, 0] == 0


def test_exif_rotation_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (30, 10), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif.tobytes())
    assert load_image(p).size == (10, 30)


def test_one_pixel_image(tmp_path: Path) -> None:
    p = _png(tmp_path / "dot.png", Image.new("RGB", (1, 1), (10, 20, 30)))
    x = ImageTransform(size=32)(load_image(p))
    assert x.shape == (3, 32, 32) and torch.isfinite(x).all()


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    p = _png(tmp_path / "bomb.png", Image.new("1", (12000, 12000), 0))  # 144 MP, a tiny file
    assert p.stat().st_size < 200_000
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(p)
    p = _png(tmp_path / "bomb2.png", Image.new("1", (8000, 8000), 0))  # 64 MP: over our default limit
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(p)
    with pytest.raises(ImageLoadError, match="too large"):
        load_image(_png(tmp_path / "big.png", Image.new("RGB", (50, 50))), max_pixels=1000)


def test_transform_and_listing(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _png(tmp_path / "sub" / "a.PNG", Image.new("RGB", (40, 20), (255, 255, 255)))
    (tmp_path / "readme.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.PNG"]
    t = ImageTransform(size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = t(load_image(tmp_path / "sub" / "a.PNG"))
    assert x.shape == (3, 16, 16) and torch.allclose(x, torch.ones_like(x))
    assert ImageTransform.from_dict(t.to_dict()) == t
    with pytest.raises(FileNotFoundError, match="image_dir"):
        list_images(tmp_path / "nope")

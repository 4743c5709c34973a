"""Hostile and unusual images: a correct thumbnail or a clear UnreadableImage, never a crash or a memory blow-up."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any, cast

import pytest
from PIL import Image

from chalicelib.covers.images import UnreadableImage, make_thumbnails

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares huge dimensions (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _check(thumbs: list[Any], sides: tuple[int, ...] = (100, 200)) -> None:
    assert {t.name for t in thumbs} == {f"{side}.{ext}" for side in sides for ext in ("jpg", "webp")}
    for thumb in thumbs:
        with Image.open(io.BytesIO(thumb.data)) as im:
            assert im.size == (thumb.width, thumb.height)
            assert im.format == ("JPEG" if thumb.name.endswith("jpg") else "WEBP")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is plain text, not an image", "not a readable image"),
        (b"", "not a readable image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 10, "image"),
        (_png_header_only(100_000, 100_000), "exceeds"),
        (_png_header_only(20_000, 20_000), "exceeds"),
        (_png_header_only(8_000, 8_000), "exceeds the limit of 50000000 pixels"),
    ],
    ids=["text", "empty", "jpeg-magic-only", "bomb-10-gigapixel", "bomb-400-megapixel", "over-our-64mp-limit"],
)
def test_unreadable_inputs_fail_clearly(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableImage, match=reason):
        make_thumbnails(data)


def test_truncated_jpeg_fails_clearly() -> None:
    whole = _save(Image.effect_noise((800, 600), 64).convert("RGB"), "JPEG", quality=90)
    with pytest.raises(UnreadableImage, match=r"corrupt image|not a readable image"):
        make_thumbnails(whole[: len(whole) // 2])


def test_animated_gif_uses_its_first_frame() -> None:
    frames = [Image.new("P", (300, 200), color) for color in (10, 200, 90)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    _check(make_thumbnails(buf.getvalue()))


def test_cmyk_jpeg_is_converted() -> None:
    thumbs = make_thumbnails(_save(Image.new("CMYK", (640, 480), (0, 255, 255, 0)), "JPEG"))
    _check(thumbs)
    with Image.open(io.BytesIO(thumbs[0].data)) as im:
        assert im.mode == "RGB"
        red, green, blue = cast("tuple[int, int, int]", im.getpixel((50, 50)))
        assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_png_keeps_its_tones() -> None:
    im = Image.new("I;16", (400, 300), 40_000)
    thumbs = make_thumbnails(_save(im, "PNG"))
    _check(thumbs)
    with Image.open(io.BytesIO(thumbs[0].data)) as out:
        value = cast("int", out.convert("L").getpixel((50, 50)))
        assert 140 <= value <= 170  # 40000 / 65535 of white, not clipped to 255


def test_png_with_alpha_keeps_transparency_in_webp_and_whitens_jpeg() -> None:
    im = Image.new("RGBA", (500, 500), (0, 0, 255, 0))
    thumbs = {t.name: t for t in make_thumbnails(_save(im, "PNG"))}
    with Image.open(io.BytesIO(thumbs["100.webp"].data)) as webp:
        assert webp.mode == "RGBA" and cast("tuple[int, ...]", webp.getpixel((50, 50)))[3] == 0
    with Image.open(io.BytesIO(thumbs["100.jpg"].data)) as jpeg:
        assert jpeg.getpixel((50, 50)) == pytest.approx((255, 255, 255), abs=3)


def test_giant_exif_is_tolerated() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription, near the 64 KiB APP1 limit
    exif[0x0112] = 3
    _check(make_thumbnails(_save(Image.new("RGB", (320, 240), (1, 2, 3)), "JPEG", exif=exif.tobytes())))


def test_invalid_exif_orientation_does_not_crash() -> None:
    exif = Image.Exif()
    exif[0x0112] = 99
    _check(make_thumbnails(_save(Image.new("RGB", (320, 240), (1, 2, 3)), "JPEG", exif=exif.tobytes())))


def test_tiny_and_extreme_aspect_images() -> None:
    # Never upscaled: a source below the smallest size gets one thumbnail of its short side.
    _check(make_thumbnails(_save(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG")), sides=(1,))
    _check(make_thumbnails(_save(Image.new("RGB", (4000, 3), (9, 9, 9)), "PNG")), sides=(3,))


@pytest.mark.parametrize(
    ("size", "sides"),
    [
        ((120, 300), (100,)),
        ((200, 200), (100, 200)),
        ((80, 90), (80,)),
        ((640, 199), (100,)),
        ((1200, 800), (100, 200)),
    ],
)
def test_small_covers_are_not_upscaled(size: tuple[int, int], sides: tuple[int, ...]) -> None:
    for fmt in ("PNG", "JPEG", "WEBP"):
        thumbs = make_thumbnails(_save(Image.new("RGB", size, (9, 90, 9)), fmt))
        _check(thumbs, sides=sides)
        assert all(t.width <= min(size) for t in thumbs)


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = _save(Image.new("RGB", (4000, 3000), (120, 10, 10)), "JPEG", quality=85)
    thumbs = make_thumbnails(big)
    _check(thumbs)
    assert max(len(t.data) for t in thumbs) < 50_000


def test_other_formats_are_refused() -> None:
    with pytest.raises(UnreadableImage):
        make_thumbnails(_save(Image.new("RGB", (50, 50)), "BMP"))
    with pytest.raises(UnreadableImage):
        make_thumbnails(_save(Image.new("RGB", (50, 50)), "TIFF"))


# PNG and WebP are decoded by libvips (WebP shrunk on load), JPEG and GIF by Pillow: the same
# refusals and the same meaning on both paths.


def _webp_header_only(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L) that declares `width` x `height` (up to 16384 each) and holds no pixels."""
    bits = (width - 1) | ((height - 1) << 14)
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 9  # an even length: RIFF pads odd chunks
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(vp8l)) + b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_truncated_png_and_webp_fail_clearly(fmt: str) -> None:
    noisy = Image.effect_noise((600, 400), 64).convert("RGB")
    whole = _save(noisy, fmt)
    with pytest.raises(UnreadableImage, match=r"corrupt image|not a readable image"):
        make_thumbnails(whole[: len(whole) // 2])


def test_webp_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(UnreadableImage, match="16000x16000 pixels exceeds the limit of 50000000 pixels"):
        make_thumbnails(_webp_header_only(16_000, 16_000))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_exif_orientation_is_applied_on_every_path(fmt: str) -> None:
    """Left half red, right half blue, stored sideways (orientation 6: shown turned 90° clockwise):
    upright, the red half is on top."""
    im = Image.new("RGB", (800, 400), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 400, 400))
    exif = Image.Exif()
    exif[0x0112] = 6
    thumbs = {t.name: t for t in make_thumbnails(_save(im, fmt, exif=exif.tobytes()))}
    with Image.open(io.BytesIO(thumbs["200.webp"].data)) as upright:
        top = cast("tuple[int, int, int]", upright.convert("RGB").getpixel((100, 20)))
        bottom = cast("tuple[int, int, int]", upright.convert("RGB").getpixel((100, 180)))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom

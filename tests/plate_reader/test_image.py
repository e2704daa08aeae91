import struct
import zlib

import cv2
import numpy as np
import pytest

from plate_reader.image import ImageError, as_bgr, decode_image


def _jpeg(h=60, w=80):
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))
    return buf.tobytes()


def _png_header(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_decodes_jpeg_and_png():
    assert decode_image(_jpeg()).shape == (60, 80, 3)
    ok, buf = cv2.imencode(".png", np.zeros((10, 20), np.uint8))
    assert decode_image(buf.tobytes()).shape == (10, 20, 3)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "image_empty"),
        (b"hello, not an image", "image_unsupported"),
        (b"%PDF-1.4\n", "image_unsupported"),
        (_jpeg()[:200], "image_truncated"),
        (_jpeg()[:-300], "image_truncated"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40, "image_corrupt"),
        (_png_header(20, 20), "image_truncated"),
        (_png_header(0, 20) + b"IEND", "image_corrupt"),
    ],
)
def test_refuses_bad_images(data, code):
    with pytest.raises(ImageError) as e:
        decode_image(data)
    assert e.value.code == code
    assert e.value.message


def test_refuses_declared_bomb_before_decoding():
    # A 20000×20000 PNG header followed by nothing: refused from the header alone.
    with pytest.raises(ImageError) as e:
        decode_image(_png_header(20000, 20000) + b"\x00" * 100)
    assert e.value.code == "image_too_large"
    # Same for a JPEG whose SOF declares 20000×20000.
    data = bytearray(_jpeg())
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", 20000, 20000)
    with pytest.raises(ImageError) as e:
        decode_image(bytes(data))
    assert e.value.code == "image_too_large"
    with pytest.raises(ImageError) as e:
        decode_image(_jpeg(), max_pixels=100)
    assert e.value.code == "image_too_large"


def test_as_bgr():
    assert as_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(ImageError):
        as_bgr(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ImageError):
        as_bgr(np.zeros((4, 5, 3), np.float32))

"""Safe image decoding: refuse empty, corrupt, truncated, unsupported and oversized images with clear codes.

The declared size is read from the header before any pixel is decoded, so a 20000×20000 "bomb" costs a few
bytes of parsing, not gigabytes of memory.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np


class ImageError(ValueError):
    """An input that is not a usable image. ``code`` is a snake_case reason for APIs and the CLI."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageError("image_corrupt", f"JPEG: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
        # SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                break
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + seg_len
    raise ImageError("image_corrupt", "JPEG: no frame header (SOF) found; the file is damaged or truncated")


def _declared_size(data: bytes) -> tuple[str, int, int]:
    if data[:3] == b"\xff\xd8\xff":
        return ("jpeg", *_jpeg_size(data))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageError("image_corrupt", "PNG: missing IHDR header")
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:2] == b"BM":
        if len(data) < 26:
            raise ImageError("image_corrupt", "BMP: header truncated")
        w, h = struct.unpack("<ii", data[18:26])
        return "bmp", abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8X" and len(data) >= 30:
            w = 1 + int.from_bytes(data[24:27], "little")
            h = 1 + int.from_bytes(data[27:30], "little")
            return "webp", w, h
        if chunk == b"VP8 " and len(data) >= 30:
            w, h = struct.unpack("<HH", data[26:30])
            return "webp", w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L" and len(data) >= 25:
            b = data[21:25]
            w = 1 + (((b[1] & 0x3F) << 8) | b[0])
            h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
            return "webp", w, h
        raise ImageError("image_corrupt", "WebP: header truncated or unknown")
    raise ImageError("image_unsupported", "not a JPEG, PNG, BMP or WebP image")


def decode_image(data: bytes, *, max_pixels: int = 40_000_000) -> np.ndarray:
    """Decode to BGR uint8, or raise ImageError (image_empty, image_corrupt, image_truncated,
    image_unsupported, image_too_large)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError("image_unsupported", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError("image_empty", "the image is empty (0 bytes)")
    fmt, w, h = _declared_size(data)
    if w <= 0 or h <= 0:
        raise ImageError("image_corrupt", f"{fmt.upper()}: declared size {w}×{h} is empty")
    if w * h > max_pixels:
        raise ImageError(
            "image_too_large", f"{fmt.upper()}: declared size {w}×{h} exceeds the limit of {max_pixels} pixels"
        )
    if fmt == "jpeg":
        # libjpeg fills a truncated scan with grey and only warns; the end-of-image marker must follow the scan.
        sos = data.rfind(b"\xff\xda")
        if sos < 0 or data.find(b"\xff\xd9", sos) < 0:
            raise ImageError("image_truncated", "JPEG: no end-of-image marker; the file is truncated")
    elif fmt == "png" and b"IEND" not in data[-64:]:
        raise ImageError("image_truncated", "PNG: no IEND chunk; the file is truncated")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageError("image_corrupt", f"{fmt.upper()}: the decoder could not read the pixel data")
    return img


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept grey, BGR or BGRA uint8 arrays from callers that decoded frames themselves."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ImageError("image_empty", "the image array is empty")
    if image.dtype != np.uint8:
        raise ImageError("image_unsupported", f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ImageError("image_unsupported", f"unsupported image shape {image.shape}")

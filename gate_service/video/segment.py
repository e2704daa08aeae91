"""A segment: the open one a kiosk's frames go into, its encoding (in a worker thread) into an MP4 file, and
what is known of it once closed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

FOURCC = "mp4v"  # MPEG-4 Part 2 in MP4: encodes with the FFmpeg built into opencv-python, no network codecs.


@dataclass
class Segment:
    id: int | None  # None: provisional (recorded while the database was down), see ``sidecar``
    gate_id: str
    key: str | None
    started_at: datetime
    rolls_at: datetime
    shape: tuple[int, ...]
    spool: Path
    fps: float
    # (slot, image); image None pads up to the slot with the last picture (at close).
    queue: asyncio.Queue[tuple[int, np.ndarray | None] | None]
    last_at: datetime
    last_seen: float
    next_slot: int = 0
    task: asyncio.Task[None] | None = None
    # Touched only by the encoding thread (one batch at a time per segment).
    writer: Any = None
    written: int = 0
    last_image: np.ndarray | None = None
    failed: str | None = None
    dropped: int = 0
    sidecar: Path | None = None  # provisional segments: the JSON beside the spool file

    @property
    def name(self) -> str:
        return str(self.id) if self.id is not None else self.spool.stem


@dataclass(frozen=True)
class ClosedSegment:
    """A closed segment; ``id`` and ``key`` are None while a provisional one waits to be indexed."""

    id: int | None
    gate_id: str
    key: str | None
    started_at: datetime
    ended_at: datetime
    frames: int
    bytes: int | None
    sha256: str | None
    status: str


def encode_batch(seg: Segment, batch: list[tuple[int, np.ndarray | None]]) -> int:
    if seg.failed is not None:
        return 0
    if seg.writer is None:
        seg.spool.parent.mkdir(parents=True, exist_ok=True)
        height, width = seg.shape[:2]
        writer = cv2.VideoWriter(str(seg.spool), cv2.VideoWriter_fourcc(*FOURCC), seg.fps, (width, height))
        if not writer.isOpened():
            seg.failed = f"cannot open a {FOURCC} writer for {width}x{height}"
            return 0
        seg.writer = writer
    before = seg.written
    for slot, image in batch:
        if image is None:
            while seg.last_image is not None and seg.written <= slot:
                seg.writer.write(seg.last_image)
                seg.written += 1
            continue
        frame = bgr(image)
        # Slots skipped by a pause or left out under load show the previous picture: time stays true.
        filler = seg.last_image if seg.last_image is not None else frame
        while seg.written < slot:
            seg.writer.write(filler)
            seg.written += 1
        if seg.written == slot:
            seg.writer.write(frame)
            seg.written += 1
            seg.last_image = frame
    return seg.written - before


def release_writer(seg: Segment) -> None:
    if seg.writer is not None:
        seg.writer.release()
        seg.writer = None
    seg.last_image = None


def bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image

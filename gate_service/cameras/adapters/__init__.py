"""ANPR cameras' event pushes, one adapter per vendor: a third vendor is one module added to ``ADAPTERS``.

An adapter turns the parts of one upload (an XML or JSON description and JPEG pictures) into a
``CameraEvent``; everything after that (cleangate's own read as the check, the event-time bounds, one passage
per event) is shared, in ``gate_service.gates.camera``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gate_service.errors import ApiError

MAX_DESCRIPTION = 256 * 1024


@dataclass
class CameraEvent:
    plate: str | None
    color: str
    direction: str
    confidence: float | None
    at: datetime | None
    event_id: str | None
    pictures: dict[str, bytes]
    vendor: str = "hikvision"
    # Picture names in the order the vendor's scene pictures are preferred (the whole vehicle first).
    prefer: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventPart:
    name: str
    content_type: str
    data: bytes

    @property
    def is_picture(self) -> bool:
        return self.data[:2] == b"\xff\xd8"


class CameraAdapter(Protocol):
    vendor: str

    def accepts(self, description: EventPart) -> bool:
        """Whether this vendor wrote the event's description part."""

    def parse(self, description: EventPart, pictures: dict[str, bytes]) -> CameraEvent:
        """The event; ``ApiError`` 422 ``bad_event`` when the description is malformed."""


def _adapters() -> list[CameraAdapter]:
    from gate_service.cameras.adapters import dahua, hikvision

    return [hikvision.ADAPTER, dahua.ADAPTER]


def choose(description: EventPart, vendor: str | None = None) -> CameraAdapter:
    adapters = _adapters()
    if vendor:
        for adapter in adapters:
            if adapter.vendor == vendor:
                return adapter
        raise ApiError(422, "unknown_vendor", f"不支持的相机厂商: {vendor} / unknown camera vendor", field="vendor")
    for adapter in adapters:
        if adapter.accepts(description):
            return adapter
    raise ApiError(422, "bad_event", "无法识别的相机事件格式 / the event description is neither Hikvision XML "
                   "nor Dahua JSON")


def describes(part: EventPart) -> bool:
    """Whether some vendor's adapter reads this part as an event description."""
    return bool(part.data.strip()) and any(adapter.accepts(part) for adapter in _adapters())


def vendors() -> list[str]:
    return [a.vendor for a in _adapters()]

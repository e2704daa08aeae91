"""Camera URLs without their credentials, for every log line, API answer and export."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?i)\b(rtsps?|https?)://[^/@\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:user(?:name)?|pass(?:word)?|pwd|token|key|auth)=)[^&\s]*")


def redact_url(url: str) -> str:
    """``rtsp://admin:pw@10.0.0.5:554/ch1?token=x`` → ``rtsp://***@10.0.0.5:554/ch1?token=***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = _SECRET_QUERY.sub(r"\1***", "?" + parts.query)[1:] if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Any camera URL inside free text (ffmpeg's error lines quote the input URL) with its credentials hidden."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(lambda m: f"{m.group(1)}://***@", text))

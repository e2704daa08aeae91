"""Video: each gate's frames recorded as indexed MP4 segments, and the media store (video, snapshots, crops)."""

from gate_service.video.storage import BlobStore, LocalStore, StoredBlob, media_key, open_store

__all__ = ["BlobStore", "LocalStore", "StoredBlob", "media_key", "open_store"]

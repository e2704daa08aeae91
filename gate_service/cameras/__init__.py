"""Gate cameras the service pulls itself: RTSP sources in the registry, frames for the plate reader, segments
recorded by stream copy, and the vendors' event pushes (``adapters``)."""

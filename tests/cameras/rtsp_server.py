"""A real RTSP camera for the tests: GStreamer's RTSP server looping an MP4 (H.264 or H.265).

Run with Debian's own ``/usr/bin/python3`` (where python3-gi lives), not the project's virtualenv:

    /usr/bin/python3 rtsp_server.py VIDEO.mp4 h264|h265 [PORT]

Binds 127.0.0.1 (port 0: any free one), prints ``ready rtsp://127.0.0.1:PORT/cam`` on stdout once it
listens, and serves until killed. One shared media: every client sees the same live stream, as with a camera.
The MP4 needs its index first (``ffmpeg -movflags +faststart``): qtdemux reads it in push mode here.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PAY = {"h264": "h264parse ! rtph264pay name=pay0 pt=96 config-interval=1",
       "h265": "h265parse ! rtph265pay name=pay0 pt=96 config-interval=1"}


def main() -> None:
    path, codec = sys.argv[1], sys.argv[2]
    port = sys.argv[3] if len(sys.argv) > 3 else "0"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( multifilesrc location={path} loop=true ! qtdemux ! {PAY[codec]} )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit("could not attach the RTSP server")
    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}/cam", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()

"""``plate-reader read FILE...``: one JSON line per file (see shared/API.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence


def _line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _read(args: argparse.Namespace) -> int:
    from .image import ImageError, decode_image
    from .reader import PlateReader

    reader = PlateReader(engine=args.engine, threads=args.threads)
    # Which models read the plates, so a read can be traced to the weights that made it.
    # ... and whether each confidence map it states probabilities from was fitted for those very models.
    ran = {"engine": reader.engine, "models": reader.models,
           "calibration": {path: "current" if info["current"] else "stale"
                           for path, info in reader.calibration.items()}}
    failed = 0
    for name in args.files:
        t0 = time.perf_counter()
        try:
            if name == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as f:
                    data = f.read()
            frame = decode_image(data, max_pixels=args.max_pixels)
            r = reader.read(frame)
            out = {
                "file": name,
                "plate": r.plate,
                "color": r.color,
                "confidence": round(float(r.confidence), 4),
                "probability": r.probability,
                "box": list(r.box) if r.box else None,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
                **ran,
            }
        except ImageError as e:
            failed += 1
            out = {"file": name, "error": {"code": e.code, "message": e.message}}
        except FileNotFoundError:
            failed += 1
            out = {"file": name, "error": {"code": "file_not_found", "message": f"no such file: {name}"}}
        except IsADirectoryError:
            failed += 1
            out = {"file": name, "error": {"code": "file_unreadable", "message": f"{name} is a directory"}}
        except PermissionError:
            failed += 1
            out = {"file": name, "error": {"code": "file_unreadable", "message": f"permission denied: {name}"}}
        print(_line(out), flush=True)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    from .reader import DEFAULT_ENGINE, ENGINES

    parser = argparse.ArgumentParser(prog="plate-reader", description="Read Chinese licence plates offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    rd = sub.add_parser("read", help="read the plate in each image file; one JSON line per file")
    rd.add_argument("files", nargs="+", metavar="FILE", help="image files (JPEG, PNG, BMP, WebP); - for stdin")
    rd.add_argument("--engine", choices=(*ENGINES, "onnx"), default=DEFAULT_ENGINE,
                    help=f"own, ppocr, combined (both, product of experts) or paddle; onnx = ppocr "
                         f"(default {DEFAULT_ENGINE})")
    rd.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    rd.add_argument("--max-pixels", type=int, default=40_000_000, help="refuse images declaring more pixels")
    args = parser.parse_args(argv)
    if args.command == "read":
        return _read(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

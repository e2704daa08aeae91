"""Derive the own/combined engines' thresholds (plate_reader/thresholds.py) for the weights this checkout ships.

    nice -n 10 .venv/bin/python -m benchmarks.derive_thresholds [--write] [--limit N] [--per-kind N]

``color_trust`` (own and combined: the kind classifier's colour stands when it is at least this sure, else the
crop's HSV colour), ``expert_below`` (combined: PP-OCRv4 is asked only about crops the own models read below
it) and ``expert_crops`` (combined: about at most this many crops of one read) are measured per candidate value on data we may tune on:

- the CCPD **train** split (plate_reader/training/ccpd_split.json "train", photos as benchmarks/ccpd.py reads them
  from the pinned snapshot), each whole photo plus calibrate_confidence's degraded copies; all blue plates;
- a synthetic set of every plate kind, made by the TRAINING renderer (training/render.py ``render_plate``, then
  ``augment.camera_crop`` style 5) on the training glyph bank, with this script's own seed (``SEED``, not a seed
  any training or evaluation set uses), each crop read as a crop.

Never read here: the EasyPR photos, the CCPD test split, plate_reader/synth.py and synth_hard.py.

For each candidate: right colours and exact reads (colour_trust, own engine); exact reads, mean time per read and
the crops PP-OCRv4 was asked about (expert_below, combined engine, at the chosen colour_trust; expert_crops at
both chosen values). The rules that pick the values are ``thresholds.choose_color_trust`` / ``choose_expert_below``
/ ``choose_expert_crops`` (most right colours; the smallest expert_below within 0.5 points of asking always on
each set; the smallest cap within 0.5 points of no cap on each set). With ``--write`` all are stored in
plate_reader/calibration.json ``thresholds`` for the models they were derived for, with this provenance.

The cap is stored only with ``--apply-cap``. On 2026-12-02 the two sets above, then with loose crops added, chose
1; with loose crops in fonts the models never trained on added too, 3. Against no cap in one run, 1 lost 3 of 112
EasyPR report photos and 2.3 points on the hard synthetic crops, 3 lost 2 photos and 1.5 points, though either
halved combined's p95 frame time: our renderer's shapes do not price what PP-OCRv4 adds on real and Noto-font
plates. So readers keep no cap and the table stays on record (``derived.cap_table``, ``cap_choice``).

A read's outcome depends on a threshold only through the comparisons it makes with it, so each frame is first
read at the lowest candidate while recording the values compared (the classifier's probabilities, the own reads'
confidences); the next candidate is read afresh only when one of those values lies between the two, else the
same computation would run and its read and time are reused (the log counts the reads actually run, and the
first ``--check`` items of each set are read afresh at every candidate to prove the reuse exact).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.calibrate_confidence import DEGRADE, _commit, degrade  # noqa: E402
from benchmarks.ccpd import parse_name, photo_source  # noqa: E402
from plate_reader.calibration import load_maps  # noqa: E402
from plate_reader.reader import PlateRead, PlateReader  # noqa: E402
from plate_reader.thresholds import (  # noqa: E402
    EXPERT_TOLERANCE,
    Row,
    choose_color_trust,
    choose_expert_below,
    choose_expert_crops,
    save_entries,
)

SEED = 4243  # this script's synthetic set (training uses 20261201/20261202, its evaluation 21261201/21262201)
GLYPH_SEED = 20261201  # the training glyph bank's sampling seed (which real glyph cuts it holds)
STYLE = 5
EXTRACTED = Path("/tmp/cleangate-train/extracted")
COLOR_CANDIDATES = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)  # 0: always the model; 1.01: HSV only
EXPERT_CANDIDATES = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.01)  # 0: never ask PP-OCRv4; 1.01: always
CAP_CANDIDATES = (1, 2, 3, 4, 6, 8, 0)  # PP-OCRv4 crops per read at most; 0: no cap
KIND_COLOR = {"blue": "blue", "yellow": "yellow", "yellow_double": "yellow", "green": "green",
              "yellow_green": "yellow-green", "white": "white", "black": "black"}


@dataclass(frozen=True)
class Item:
    image: np.ndarray
    plate: str
    color: str
    crop: bool  # read as a crop (read_crop) rather than a scene (read)


class Skip(RuntimeError):
    """A data source is absent: nothing is derived."""


def ccpd_items(limit: int, folder: Path | None) -> tuple[list[Item], int]:
    from plate_reader.training.ccpd import load_split
    from plate_reader.training.sources import SourceMissing

    split = load_split()
    names = sorted(split["train"])
    assert not set(split["test"]) & set(names), "the train and test lists overlap"
    if limit and limit < len(names):
        names = [names[i * len(names) // limit] for i in range(limit)]
    try:
        read = photo_source(folder)
        items = []
        for name in names:
            plate, _ = parse_name(name.rsplit("/", 1)[-1])
            photo = read(name)
            items += [Item(f, plate, "blue", False) for f in [photo] + [degrade(photo, *d) for d in DEGRADE]]
    except (SourceMissing, OSError) as e:
        raise Skip(f"CCPD train photos unavailable ({e})") from e
    except Exception as e:  # git show failing on a missing snapshot
        if type(e).__name__ == "CalledProcessError":
            raise Skip(f"CCPD train photos unavailable: {e}") from e
        raise
    return items, len(names)


def synthetic_items(per_kind: int, extracted: Path) -> list[Item]:
    from plate_reader.training import augment, glyphs, render
    from plate_reader.training.sources import SourceMissing

    if not extracted.is_dir():
        raise Skip(f"the training glyph sources are not extracted at {extracted} (python -m plate_reader.training "
                   "extracts them from the fetched snapshots in /work/.mirror)")
    try:
        bank = glyphs.load(extracted, seed=GLYPH_SEED)
    except (SourceMissing, OSError) as e:
        raise Skip(f"the training glyph bank cannot be loaded from {extracted}: {e}") from e
    rng = np.random.default_rng(SEED)
    items = []
    for kind in render.KINDS:
        for _ in range(per_kind):
            plate = render.render_plate(bank, rng, kind)
            # Easy and hard crops mixed, as the training data is.
            crop = augment.camera_crop(plate.image, rng, float(rng.uniform(0.4, 1.1)), style=STYLE)
            items.append(Item(crop, plate.text, KIND_COLOR[kind], True))
    return items


def loose_items(per_kind: int, extracted: Path, fonts: bool = False) -> list[Item]:
    """Plates like the synthetic set's with car body round them (``augment.loosen``), read as frames: what the
    PP-OCRv4 cap is for, a search that tries several candidates. On its own random stream ([SEED, 1]). With
    ``fonts``, every plate is drawn in one of ``glyphs.MORE_FONTS`` (stream [SEED, 2]): shapes the shipped models
    were not trained on (they never saw style 7) and no evaluation set uses, where PP-OCRv4's reads count most."""
    from plate_reader.training import augment, glyphs, render

    bank = glyphs.load(extracted, seed=GLYPH_SEED, fonts=fonts, font_table=glyphs.MORE_FONTS if fonts else None)
    rng = np.random.default_rng([SEED, 2 if fonts else 1])
    items = []
    for kind in render.KINDS:
        for _ in range(per_kind):
            plate = render.render_plate(bank, rng, kind, fonts=fonts, font_share=1.0)
            crop = augment.camera_crop(augment.loosen(plate.image, rng), rng, float(rng.uniform(0.4, 1.1)),
                                       style=STYLE)
            items.append(Item(crop, plate.text, KIND_COLOR[kind], False))
    return items


def _probe_colour(reader: PlateReader, seen: list[float]) -> None:
    """Record every probability the kind classifier's colour is compared with color_trust on."""
    classify = reader.kinds.classify

    def recording(crops):
        guesses = classify(crops)
        seen.extend(g.prob for g in guesses)
        return guesses

    reader.kinds.classify = recording


def _probe_expert(reader: PlateReader, seen: list[float], calls: list[int]) -> None:
    """Record every own-read confidence compared with expert_below, and count the crops PP-OCRv4 reads."""
    own_best, probs = reader._own_best, reader.expert.probs

    def recording(att, templates, reads, path):
        read = own_best(att, templates, reads, path)
        if path == "own" and read is not None:
            seen.append(read.confidence)
        return read

    def counting(images, **kw):
        calls[0] += len(images)
        return probs(images, **kw)

    reader._own_best = recording
    reader.expert.probs = counting


def _same(a: PlateRead, b: PlateRead) -> bool:
    return (a.plate, a.color, a.confidence, a.box) == (b.plate, b.color, b.confidence, b.box)


class _Tally:
    """Per candidate value: exact reads, right colours, summed ms and PP-OCRv4 crops over a set's items."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)
        k = len(self.values)
        self.exact, self.color, self.ms, self.expert = [0] * k, [0] * k, [0.0] * k, [0] * k

    def add(self, i: int, item: Item, got: tuple[PlateRead, float, int]) -> None:
        r, t_ms, n_exp = got
        self.exact[i] += r.plate == item.plate
        self.color[i] += r.color == item.color
        self.ms[i] += t_ms
        self.expert[i] += n_exp

    def rows(self, n: int) -> list[Row]:
        return [Row(v, n, self.exact[i], self.color[i], round(self.ms[i] / max(1, n), 1), self.expert[i])
                for i, v in enumerate(self.values)]


def sweep(reader: PlateReader, items: Sequence[Item], attr: str, candidates: Sequence[float],
          seen: list[float], calls: list[int] | None = None, check: int = 0) -> tuple[list[Row], int]:
    """Per candidate, the rows of ``Row``; and how many reads actually ran. The first ``check`` items are also
    read afresh at every candidate, and a reused read that differs stops the derivation (the reader has grown a
    comparison with the threshold that the probes do not see)."""
    values = sorted(candidates)
    tally = _Tally(values)
    ran = 0

    def run(item: Item, v: float) -> tuple[PlateRead, float, int]:
        setattr(reader, attr, v)
        seen.clear()
        before = calls[0] if calls else 0
        t = time.perf_counter()
        r = reader.read_crop(item.image) if item.crop else reader.read(item.image)
        return r, (time.perf_counter() - t) * 1000, (calls[0] - before) if calls else 0

    for n_item, item in enumerate(items):
        last: tuple[PlateRead, float, int] | None = None
        observed: list[float] = []
        for i, v in enumerate(values):
            if last is None or any(values[i - 1] <= s < v for s in observed):
                last = run(item, v)
                observed = list(seen)
                ran += 1
            elif n_item < check:
                fresh = run(item, v)
                if not _same(fresh[0], last[0]) or fresh[2] != last[2]:
                    raise RuntimeError(f"{attr}={v}: a reused read differs from a fresh one ({last[0].plate} / "
                                       f"{fresh[0].plate}): the probes miss a comparison with {attr}")
            tally.add(i, item, last)
    return tally.rows(len(items)), ran


def sweep_cap(reader: PlateReader, items: Sequence[Item], candidates: Sequence[int], calls: list[int],
              check: int = 0) -> tuple[list[Row], int]:
    """``sweep`` for ``expert_crops``: a read whose uncapped run asked PP-OCRv4 about u crops is the same
    computation under any cap >= u, so only the caps below u are read afresh (checked on the first ``check``
    items, as ``sweep`` does)."""
    values = list(candidates)
    tally = _Tally(values)
    ran = 0

    def run(item: Item, cap: int) -> tuple[PlateRead, float, int]:
        reader.expert_crops = cap
        before = calls[0]
        t = time.perf_counter()
        r = reader.read_crop(item.image) if item.crop else reader.read(item.image)
        return r, (time.perf_counter() - t) * 1000, calls[0] - before

    for n_item, item in enumerate(items):
        free = run(item, 0)
        ran += 1
        for i, cap in enumerate(values):
            if cap == 0 or cap >= free[2]:
                got = free
                if n_item < check and cap:
                    fresh = run(item, cap)
                    if not _same(fresh[0], free[0]) or fresh[2] != free[2]:
                        raise RuntimeError(f"expert_crops={cap}: a read the cap does not reach differs from the "
                                           f"uncapped one ({free[0].plate} / {fresh[0].plate})")
            else:
                got = run(item, cap)
                ran += 1
            tally.add(i, item, got)
    return tally.rows(len(items)), ran


def _pct(k: int, n: int) -> str:
    return f"{100.0 * k / max(1, n):5.1f}%"


def color_table(sets: dict[str, list[Row]]) -> str:
    names = list(sets)
    head = "color_trust | " + " | ".join(f"{s}: right colour, exact" for s in names)
    lines = [head]
    for i, row in enumerate(sets[names[0]]):
        cells = [f"{r.color}/{r.n} {_pct(r.color, r.n)}, {r.exact} {_pct(r.exact, r.n)}"
                 for r in (sets[s][i] for s in names)]
        lines.append(f"{row.value:11.2f} | " + " | ".join(cells))
    return "\n".join(lines)


def expert_table(sets: dict[str, list[Row]], what: str = "expert_below") -> str:
    names = list(sets)
    lines = [f"{what} | " + " | ".join(f"{s}: exact, ms/read, PP-OCRv4 crops/read" for s in names)]
    for i, row in enumerate(sets[names[0]]):
        cells = [f"{r.exact}/{r.n} {_pct(r.exact, r.n)}, {r.ms:6.1f} ms, {r.expert / max(1, r.n):.2f}"
                 for r in (sets[s][i] for s in names)]
        value = f"{row.value:12.2f}" if what == "expert_below" else f"{int(row.value) or 'no cap':>12}"
        lines.append(value + " | " + " | ".join(cells))
    return "\n".join(lines)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def maps_digest() -> dict[str, str]:
    """The confidence maps expert_below's scale depends on (the own map carries own reads to PP-OCRv4's scale)."""
    maps = load_maps()
    return {e: _digest([list(k) for k in maps[e].knots]) for e in ("own", "ppocr") if e in maps}


def _rows(rows: list[Row]) -> list[dict]:
    return [{"value": r.value, "n": r.n, "exact": r.exact, "color": r.color, "ms": r.ms, "expert": r.expert}
            for r in rows]


def derive_cap(comb: PlateReader, data: dict[str, list[Item]], calls: list[int], check: int,
               started: float) -> tuple[dict[str, list[Row]], int]:
    """The cap's table on each set and the rule's choice (printed), at the reader's color_trust / expert_below."""
    cap: dict[str, list[Row]] = {}
    for name, items in data.items():
        cap[name], ran = sweep_cap(comb, items, CAP_CANDIDATES, calls, check=check)
        print(f"  expert_crops on {name}: {ran} reads run for {len(items)} x {len(CAP_CANDIDATES)}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    choice = choose_expert_crops(list(cap.values()))
    print(f"\ncombined engine (color_trust {comb.color_trust}, expert_below {comb.expert_below}), per expert_crops "
          "candidate:\n" + expert_table(cap, "expert_crops"))
    print(f"chosen expert_crops = {choice or 'no cap'} (smallest cap within {EXPERT_TOLERANCE} points of no cap on "
          f"each set); total {time.perf_counter() - started:.0f} s", flush=True)
    return cap, choice


def _cap_record(cap: dict[str, list[Row]], choice: int, args: argparse.Namespace, n_loose: int) -> dict:
    return {"cap_table": {s: _rows(r) for s, r in cap.items()}, "cap_choice": choice, "cap_applied": args.apply_cap,
            "cap_data": f"the two sets above, {n_loose} loose crops: their plates ({args.loose_per_kind} per "
                        f"kind) with car body round them (augment.loosen), seed [{SEED}, 1], read as frames, and "
                        f"{n_loose} more drawn in glyphs.MORE_FONTS (fonts the shipped models never trained on), "
                        f"seed [{SEED}, 2]"}


def _cap_only(args: argparse.Namespace, data: dict[str, list[Item]], started: float) -> int:
    """expert_crops alone, at the stored (current) combined thresholds; the entry's other fields are kept."""
    from plate_reader.thresholds import load_entries

    comb = PlateReader("combined", threads=1)
    info = comb.thresholds
    if info.source == "fallback":
        raise SystemExit("--cap-only needs current combined thresholds: run without it first")
    calls = [0]
    _probe_expert(comb, [], calls)
    cap, choice = derive_cap(comb, data, calls, args.check, started)
    if args.write:
        entry = dict(load_entries()["combined"])
        entry.pop("expert_crops", None)
        if args.apply_cap:
            entry["expert_crops"] = choice
        entry["derived"] = {**entry["derived"], **_cap_record(cap, choice, args, len(data["loose"])),
                            "cap_command": "python -m benchmarks.derive_thresholds --cap-only --write"
                                           + (" --apply-cap" if args.apply_cap else "")}
        save_entries({"combined": entry})
        print("written: plate_reader/calibration.json thresholds.combined (expert_crops"
              + (f" = {choice})" if args.apply_cap else " measured, not applied)"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=120,
                    help="N CCPD train photos evenly spaced over the sorted list (0: all 479), each read whole "
                         f"and as {len(DEGRADE)} degraded copies")
    ap.add_argument("--per-kind", type=int, default=100, help="synthetic crops per plate kind")
    ap.add_argument("--ccpd", type=Path, default=None, help="a CCPD_SubDataset folder; default the pinned snapshot")
    ap.add_argument("--extracted", type=Path, default=EXTRACTED, help="the training's extracted sources")
    ap.add_argument("--check", type=int, default=10,
                    help="the first N items of each set are also read afresh at every candidate, to check reuse")
    ap.add_argument("--write", action="store_true", help="store the chosen values in plate_reader/calibration.json")
    ap.add_argument("--loose-per-kind", type=int, default=60, help="loose synthetic crops per plate kind (the cap's "
                    "third set)")
    ap.add_argument("--cap-only", action="store_true",
                    help="derive only expert_crops, at the stored color_trust / expert_below (which must be current)")
    ap.add_argument("--apply-cap", action="store_true",
                    help="store the chosen expert_crops too (without it: measured and recorded, readers keep no cap)")
    args = ap.parse_args(argv)

    try:
        synth = synthetic_items(args.per_kind, args.extracted)
        ccpd, photos = ccpd_items(args.limit, args.ccpd)
    except Skip as e:
        print(f"skipped: {e}; nothing derived", file=sys.stderr)
        return 0
    data = {"ccpd": ccpd, "synthetic": synth}
    loose = {"loose": loose_items(args.loose_per_kind, args.extracted),
             "loose_fonts": loose_items(args.loose_per_kind, args.extracted, fonts=True)}
    print(f"data: CCPD train {photos} photos x {1 + len(DEGRADE)} = {len(ccpd)} frames (blue); synthetic "
          f"{len(synth)} crops ({args.per_kind} per kind, seed {SEED}, style {STYLE}); for the cap also "
          f"{len(loose['loose'])} loose crops ({args.loose_per_kind} per kind, car body round the plate, read as "
          f"frames) and as many in glyphs.MORE_FONTS", flush=True)

    started = time.perf_counter()
    if args.cap_only:
        return _cap_only(args, {**data, **loose}, started)
    own = PlateReader("own", threads=1)
    seen: list[float] = []
    _probe_colour(own, seen)
    colour: dict[str, list[Row]] = {}
    for name, items in data.items():
        colour[name], ran = sweep(own, items, "color_trust", COLOR_CANDIDATES, seen, check=args.check)
        print(f"  color_trust on {name}: {ran} reads run for {len(items)} x {len(COLOR_CANDIDATES)}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    color_trust = choose_color_trust(list(colour.values()))
    print("\nown engine, per color_trust candidate:\n" + color_table(colour))
    print(f"chosen color_trust = {color_trust} (most right colours over both sets; ties: exact reads, then higher)\n",
          flush=True)

    comb = PlateReader("combined", threads=1)
    comb.color_trust = color_trust
    calls = [0]
    _probe_expert(comb, seen, calls)
    expert: dict[str, list[Row]] = {}
    for name, items in data.items():
        expert[name], ran = sweep(comb, items, "expert_below", EXPERT_CANDIDATES, seen, calls, check=args.check)
        print(f"  expert_below on {name}: {ran} reads run for {len(items)} x {len(EXPERT_CANDIDATES)}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    expert_below = choose_expert_below(list(expert.values()))
    print(f"\ncombined engine (color_trust {color_trust}), per expert_below candidate:\n" + expert_table(expert))
    print(f"chosen expert_below = {expert_below} (smallest within {EXPERT_TOLERANCE} points of asking always "
          "on each set)", flush=True)

    comb.expert_below = expert_below
    cap, expert_crops = derive_cap(comb, {**data, **loose}, calls, args.check, started)

    if args.write:
        derived = {
            "data": f"CCPD train split ({photos} photos of plate_reader/training/ccpd_split.json 'train', "
                    "julienkolani/ccpd-character-recognition@0980fca3 TP/TP1/CCPD_SubDataset), whole photos plus "
                    f"degraded copies {[list(d) for d in DEGRADE]}; synthetic: {len(synth)} crops, "
                    f"{args.per_kind} per kind of plate_reader/training/render.py KINDS, augment.camera_crop "
                    f"style {STYLE}, seed {SEED}, glyph bank seed {GLYPH_SEED}",
            "rule": {"color_trust": "most right colours summed over both sets; ties: most exact reads, then the "
                                    "higher value (thresholds.choose_color_trust)",
                     "expert_below": f"smallest value within {EXPERT_TOLERANCE} points of asking always on each "
                                     "set (thresholds.choose_expert_below)",
                     "expert_crops": f"smallest cap within {EXPERT_TOLERANCE} points of no cap on each set, at the "
                                     "chosen expert_below (thresholds.choose_expert_crops)"},
            "maps": maps_digest(), "code_commit": _commit(), "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "command": "python -m benchmarks.derive_thresholds"
                       + (f" --limit {args.limit}" if args.limit != 120 else "")
                       + (f" --per-kind {args.per_kind}" if args.per_kind != 100 else "") + " --write"
                       + (" --apply-cap" if args.apply_cap else ""),
        }
        entries = {
            "own": {"models": PlateReader("own", threads=1).fingerprint, "color_trust": color_trust,
                    "derived": {**derived, "color_table": {s: _rows(r) for s, r in colour.items()}}},
            "combined": {"models": PlateReader("combined", threads=1).fingerprint, "color_trust": color_trust,
                         "expert_below": expert_below, **({"expert_crops": expert_crops} if args.apply_cap else {}),
                         "derived": {**derived, "color_table": {s: _rows(r) for s, r in colour.items()},
                                     "expert_table": {s: _rows(r) for s, r in expert.items()},
                                     **_cap_record(cap, expert_crops, args, len(loose["loose"]))}},
        }
        save_entries(entries)
        print(f"written: plate_reader/calibration.json thresholds.own / .combined (models {entries['combined']['models']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m plate_reader.training build-and-train``: data, training, ONNX export, evaluation, model card.

Reproducible from a clean checkout given the pinned snapshots (``--sources``, see sources.py): fixed seeds,
fixed step counts, torch on two threads.
"""

from __future__ import annotations

import os

# Before torch loads: on a shared machine spinning OpenMP workers cost more than they save.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_CARD = Path(__file__).with_name("MODEL_CARD.md")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cached(work: Path, key: str, build):
    from plate_reader.training.data import Arrays

    path = work / f"{key}.npz"
    if path.exists():
        return Arrays.load(path)
    arrays = build()
    arrays.save(path)
    return arrays


def baseline_figures(weights: Path, held_out: dict) -> dict:
    """Another set of weights (the previous release) read on the same held-out crops, for the card."""
    from plate_reader.training import evaluate

    version = json.loads((weights / "plate_rec.json").read_text(encoding="utf-8"))["version"]
    return {"version": version, "eval": {k: evaluate.figures(weights, a) for k, a in held_out.items()}}


def build_and_train(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from plate_reader.training import ccpd, data, evaluate, export, glyphs, model_card, nets, sources, train
    from plate_reader.training.spec import ALPHABET, KIND_INPUT, LABELS, PROV_INPUT, PROV_LABELS, REC_INPUT

    # A mistyped style fails at once, not after the sources are extracted.
    styles = extra_styles(args.extra_style) if args.extra_synthetic else []
    t_start = time.time()
    torch.set_num_threads(args.threads)
    train.seed_all(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    extracted = Path(args.extracted) if args.extracted else sources.extract(Path(args.sources), work)
    _log(f"sources ready in {extracted}")

    ccpd_root = sources.folder(extracted, "julienkolani/ccpd-character-recognition") / ccpd.SUBDIR
    photos = ccpd.photos(ccpd_root)
    if not photos:
        raise sources.SourceMissing(f"no CCPD photos under {ccpd_root}")
    split_path = Path(args.split)
    split = ccpd.make_split(photos)
    if split_path.exists():
        committed = ccpd.load_split(split_path)
        if committed != split:
            raise SystemExit(f"{split_path} does not match the split rule on these photos: refusing to train "
                             "on a different held-out set")
    else:
        ccpd.write_split(split, split_path)
    _log(f"CCPD: {len(split['train'])} train / {len(split['test'])} test photos (split by plate)")

    fonts = any(st >= 6 for st in styles)
    table = {**glyphs.SYSTEM_FONTS, **glyphs.MORE_FONTS} if any(st >= 7 for st in styles) else None
    bank = glyphs.load(extracted, seed=args.seed, fonts=fonts, font_table=table)
    tag = f"v{data.CCPD_STYLE}"
    # The held-out synthetic seed is far from the training one: chunk seeds (seed, c) never meet.
    t = time.time()
    chunks = work / "chunks"
    chunks.mkdir(exist_ok=True)
    syn = data.synthetic(bank, args.synthetic, args.seed, workers=args.workers, cache=chunks)
    syn_eval = data.synthetic(bank, args.eval_synthetic, args.seed + 1000, workers=args.workers, cache=chunks)
    # Extra data in the newer styles, each --extra-synthetic crops on its own seed (chunk seeds (seed + 1, c)
    # never meet the others'; the style is part of a chunk's key and changes its draws).
    extras = [data.synthetic(bank, args.extra_synthetic, args.seed + 1, workers=args.workers, cache=chunks,
                             style=st) for st in styles]
    extra = data.Arrays.concat(extras) if extras else None
    syn_eval_new = data.synthetic(bank, args.eval_synthetic * 2 // 3, args.seed + 1001, workers=args.workers,
                                  cache=chunks, style=data.DATA_VERSION)
    # Plates drawn in fonts no run trains on (glyphs.HELD_OUT_FONTS): transfer to unseen character shapes, the
    # question a font-trained model must answer (the evaluation renderers draw in Noto, which is never used).
    syn_unseen = None
    if fonts:
        unseen_bank = glyphs.load(extracted, seed=args.seed, fonts=True, font_table=glyphs.HELD_OUT_FONTS)
        syn_unseen = data.synthetic(unseen_bank, args.eval_synthetic * 2 // 3, args.seed + 1002,
                                    workers=args.workers, cache=chunks, style=6, font_share=1.0)
    swap_tag = f"-swap{args.real_swap}" if args.real_swap else ""
    real = _cached(work, f"ccpd-{tag}-{args.seed}-{args.real_copies}-{len(split['train'])}{swap_tag}",
                   lambda: data.ccpd_crops(ccpd_root, split["train"], args.real_copies, args.seed,
                                           swap=args.real_swap, bank=bank))
    real_test = data.ccpd_crops(ccpd_root, split["test"], 1, args.seed, jitter=False)
    real_test_jit = data.ccpd_crops(ccpd_root, split["test"], 2, args.seed + 1000, jitter=True)
    # The province slot on real plate backgrounds: the held-out photos with every province swapped (the same
    # augmentation the training copies get with --real-swap, so this measures fit to it, on unseen photos).
    real_test_swap = data.ccpd_crops(ccpd_root, split["test"], 2, args.seed + 2000, jitter=True, swap=1.0,
                                     bank=bank)
    gate = data.Arrays.concat([data.gate_crops(Path(g), args.gate_copies, args.seed) for g in args.gate_crops]) \
        if args.gate_crops else None
    t_data = time.time() - t
    _log(f"data: {len(syn)} synthetic (+{len(extra) if extra else 0} style {args.extra_style if styles else '-'}), "
         f"{len(real)} CCPD train crops, {len(gate) if gate else 0} gate crops "
         f"in {t_data:.0f} s")

    # Few CCPD crops per batch: they are 98% 皖, and at 30% of each batch 2026.12.01-2 learned that prior.
    syn_share = 1.0 - args.real_share - (args.extra_share if extra else 0.0)
    rec_sources = [(syn, syn_share), (real, args.real_share)]
    kind_sources = [(syn, 0.85 - (0.4 if extra else 0.0)), (real, 0.15)]
    for part in extras:
        # The extra share split evenly between the styles.
        rec_sources.append((part, args.extra_share / len(extras)))
        kind_sources.append((part, 0.4 / len(extras)))
    if gate is not None and len(gate):
        rec_sources.append((gate, args.gate_share))
        kind_sources.append((gate, args.gate_share))
    from plate_reader.layout import normalise

    rec = nets.Recogniser(len(ALPHABET) + 1)
    init = None
    if args.init:
        # Fine-tuning a previous run's recogniser (its WORK/rec-ema.pt): the card records which one, by hash.
        # An ONNX start (a release's weights) unfolds its BatchNorms on training crops of every source.
        sample = np.concatenate([a.rec[:1024] for a, _ in rec_sources])
        init = train.load_init(rec, Path(args.init), normalise(sample, REC_INPUT))
        _log(f"recogniser initialised from {args.init} (step {init['step']}, sha256 {init['sha256'][:12]})")
    kind = nets.KindNet(len(LABELS))
    # The classifier first: it is short, so a recogniser run stopped early still ships both models.
    kind_run = train.train_kind(kind, kind_sources, args.kind_steps, args.seed, batch=args.batch, log=_log)
    rec, rec_run = train.train_recogniser(rec, rec_sources, args.rec_steps, args.seed, batch=args.batch, log=_log,
                                          stop_after=args.rec_stop_after or None,
                                          checkpoint=work / "rec-ema.pt", stop_file=work / "STOP", lr=args.lr)

    # The province classifier last, on the recogniser's mix of crops: trained after it, it leaves the
    # recogniser's and the classifier's random draws (and so their weights) as they were without it.
    prov, prov_run = None, None
    if args.prov_steps:
        prov = nets.ProvinceNet(len(PROV_LABELS), PROV_INPUT["columns"])
        prov_run = train.train_province(prov, rec_sources, args.prov_steps, args.seed, log=_log)

    version = args.version or export.default_version(Path(args.out))
    diffs = export.write(rec, kind, Path(args.out), version, _commit(),
                         normalise(real_test.rec[:4] if len(real_test) else syn.rec[:4], REC_INPUT),
                         normalise(syn_eval.kind[:4], KIND_INPUT), prov=prov)
    out = Path(args.out)
    metrics = {
        "seed": args.seed, "threads": args.threads, "version": version,
        "commit": _commit(),
        "data": {"synthetic_train": len(syn), "synthetic_eval": len(syn_eval), "ccpd_train_photos":
                 len(split["train"]), "ccpd_test_photos": len(split["test"]), "ccpd_train_crops": len(real),
                 "real_copies": args.real_copies, "real_share": args.real_share, "real_swap": args.real_swap,
                 "extra_synthetic": args.extra_synthetic if extra else 0, "extra_style": args.extra_style,
                 "extra_total": len(extra) if extra else 0,
                 "extra_share": args.extra_share if extra else 0.0,
                 "gate_crops": len(gate) if gate else 0, "build_seconds": round(t_data, 1)},
        "params": {"rec": sum(p.numel() for p in rec.parameters()),
                   "kind": sum(p.numel() for p in kind.parameters())},
        "train": {"rec": {**rec_run, "lr": args.lr, "init": init}, "kind": kind_run},
        "notes": args.notes,
        "onnx": {"rec_bytes": (out / "plate_rec.onnx").stat().st_size,
                 "kind_bytes": (out / "plate_kind.onnx").stat().st_size,
                 **{k: v for k, v in diffs.items() if not k.startswith("prov")}},
        "latency_ms_1_thread": {
            "rec": evaluate.latency_ms(out / "plate_rec.onnx", (1, REC_INPUT["height"], REC_INPUT["width"])),
            "kind": evaluate.latency_ms(out / "plate_kind.onnx", (3, KIND_INPUT["height"], KIND_INPUT["width"]))},
        "eval": {},
    }
    held_out = {"ccpd_test": real_test, "ccpd_test_jittered": real_test_jit,
                "ccpd_test_province_swapped": real_test_swap, "synthetic_heldout": syn_eval,
                f"synthetic_heldout_style{data.DATA_VERSION}": syn_eval_new}
    if syn_unseen is not None:
        held_out["synthetic_heldout_unseen_fonts"] = syn_unseen
    if gate is not None and len(gate):
        held_out["gate_crops_seen_in_training"] = gate
    metrics["eval"] = {k: evaluate.figures(out, a) for k, a in held_out.items()}
    if prov is not None:
        # Its own block: a province classifier may be paired with a recogniser from another run (the card's
        # figures say which one it was measured with).
        metrics["prov"] = {
            "version": version, "commit": metrics["commit"], "seed": args.seed, "train": prov_run,
            "params": sum(p.numel() for p in prov.parameters()), "bytes": (out / "plate_prov.onnx").stat().st_size,
            "max_diff": diffs["prov_max_diff"], "recogniser": version,
            "latency_ms_1_thread": evaluate.latency_ms(out / "plate_prov.onnx",
                                                       (1, PROV_INPUT["height"], PROV_INPUT["columns"])),
            "eval": {k: {"n": len(a), **evaluate.template_figures(out, a)} for k, a in held_out.items()}}
    if args.baseline:
        metrics["baseline"] = baseline_figures(Path(args.baseline), held_out)
    metrics["wall_seconds"] = round(time.time() - t_start, 1)
    (work / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1))
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1) + "\n")
    if args.card:
        model_card.write(Path(args.card), metrics, args)
    _log(f"done in {metrics['wall_seconds'] / 60:.1f} min: " + json.dumps(
        {k: {kk: vv for kk, vv in v.items() if kk in ("exact", "kind_acc")} for k, v in metrics["eval"].items()}))
    return metrics


def extra_styles(value: str | int) -> list[int]:
    """``--extra-style``'s styles: ``5`` or ``5,6``; each one known to the augmenter, none twice."""
    from plate_reader.training import augment

    try:
        styles = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"--extra-style {value!r}: styles are numbers, e.g. 5 or 5,6") from None
    bad = [st for st in styles if st not in augment.STYLES]
    if not styles or bad or len(set(styles)) != len(styles):
        raise SystemExit(f"--extra-style {value!r}: give distinct styles among {augment.STYLES}")
    return styles


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plate_reader.training")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-and-train", help="build the data, train both models, export ONNX, write the card")
    b.add_argument("--sources", default=os.environ.get("CLEANGATE_TRAIN_SOURCES", "/work/.mirror"),
                   help="folder of the pinned git snapshots (<owner>+<name>/repo), as the fetch tool leaves them")
    b.add_argument("--extracted", help="an already extracted plain source tree (skips --sources)")
    b.add_argument("--out", default=str(DEFAULT_OUT), help="where the ONNX + json files go")
    b.add_argument("--work", default="/tmp/cleangate-train", help="scratch folder (extracted sources, arrays)")
    b.add_argument("--split", default=str(Path(__file__).with_name("ccpd_split.json")))
    b.add_argument("--card", default=str(DEFAULT_CARD), help="model card to write ('' to skip)")
    b.add_argument("--gate-crops", action="append", default=[],
                   help="a `gate-service crops export` folder (labels.csv + crops/) to add as real data")
    b.add_argument("--gate-copies", type=int, default=8)
    b.add_argument("--gate-share", type=float, default=0.15)
    b.add_argument("--seed", type=int, default=20261201)
    b.add_argument("--synthetic", type=int, default=70000)
    b.add_argument("--eval-synthetic", type=int, default=2100)
    b.add_argument("--real-copies", type=int, default=24)
    b.add_argument("--real-share", type=float, default=0.15)
    b.add_argument("--real-swap", type=float, default=0.0,
                   help="share of the CCPD training copies whose province glyph is swapped for another's "
                        "(province_swap.py; CCPD is 98%% 皖)")
    b.add_argument("--rec-steps", type=int, default=9000)
    b.add_argument("--rec-stop-after", type=int, default=0,
                   help="end the recogniser's schedule early at this step (0: run all --rec-steps); a run stopped "
                        "by creating WORK/STOP is reproduced with this")
    b.add_argument("--kind-steps", type=int, default=1200)
    b.add_argument("--prov-steps", type=int, default=3000,
                   help="the province classifier's steps (0: no province classifier is trained or shipped)")
    b.add_argument("--lr", type=float, default=3e-3, help="the recogniser's peak learning rate (one-cycle)")
    b.add_argument("--init", default="",
                   help="start the recogniser from a previous run's checkpoint (its WORK/rec-ema.pt): fine-tuning")
    b.add_argument("--extra-synthetic", type=int, default=0,
                   help="more synthetic crops, rendered in --extra-style on their own seed")
    b.add_argument("--extra-style", default="5",
                   help="augmentation style of the extra crops; several, comma-separated (5,6): each gets "
                        "--extra-synthetic crops and an even part of --extra-share")
    b.add_argument("--extra-share", type=float, default=0.45, help="share of each batch drawn from them")
    b.add_argument("--notes", default="", help="a paragraph for the card's run notes")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--workers", type=int, default=2, help="processes that render the synthetic data")
    b.add_argument("--version", default="")
    b.add_argument("--baseline", default="",
                   help="a folder of previous weights to read the same held-out sets with (card: old vs new)")
    args = p.parse_args(argv)
    from plate_reader.training.sources import SourceMissing

    try:
        build_and_train(args)
    except SourceMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

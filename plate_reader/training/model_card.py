"""Writes MODEL_CARD.md from the figures of a build-and-train run."""

from __future__ import annotations

import argparse
from pathlib import Path

from plate_reader.training.glyphs import FONT_LICENCES, HELD_OUT_PACKAGES, MORE_PACKAGES, TRAINING_PACKAGES
from plate_reader.training.render import FONT_PLATES, FONT_PLATES_7, PROVINCE_JIN, PROVINCE_VARIETY
from plate_reader.training.sources import SOURCES


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _eval_rows(metrics: dict) -> list[str]:
    names = {"ccpd_test": "CCPD held-out photos, crop from the labelled corners (no jitter)",
             "ccpd_test_jittered": "CCPD held-out photos, 2 localiser-jittered + degraded crops each",
             "synthetic_heldout": "own renderer, held-out seed (all kinds)",
             "ccpd_test_province_swapped": "CCPD held-out photos, every province swapped (province_swap.py), "
                                           "2 jittered crops each",
             "synthetic_heldout_style5": "own renderer, held-out seed, augmentation style 5 (harder)",
             "synthetic_heldout_unseen_fonts": "own renderer, held-out seed, style 6 with every plate drawn in a font "
                                               "no run trains on (Droid Sans Fallback, AR PL SungtiL GB, AR PL "
                                               "KaitiM GB, FreeSans Bold)",
             "gate_crops_seen_in_training": "gate crops (SEEN in training: a fit check, not a test)"}
    rows = ["| set | n | exact (greedy CTC, no grammar) | province slot wrong | kind/colour accuracy |",
            "|---|---|---|---|---|"]
    for key, fig in metrics["eval"].items():
        rows.append(f"| {names.get(key, key)} | {fig['n']} | {_pct(fig['exact'])} | {_pct(fig.get('province_err'))} "
                    f"| {_pct(fig.get('kind_acc'))} |")
    return rows


def _prov_section(metrics: dict) -> list[str]:
    """The province classifier (``metrics["prov"]``): its file, training, figures and how it was made."""
    pv = metrics.get("prov")
    if not pv:
        return []
    from plate_reader.training.spec import PROV_INPUT, PROV_LABELS

    lat, run = pv["latency_ms_1_thread"], pv["train"]
    rows = ["## Province classifier", "",
            "| file | what | parameters | size | time per crop, 1 onnxruntime thread, batch 1 (median / p95) |",
            "|---|---|---|---|---|",
            f"| `plate_reader/weights/plate_prov.onnx` + `.json` (version `{pv['version']}`) | the province from "
            f"the left {PROV_INPUT['columns']} columns of the recogniser's own input (gray {PROV_INPUT['height']}×"
            f"{PROV_INPUT['columns']}: the first character of every layout, the stitched double-row top row "
            f"included), {len(PROV_LABELS)} logits (31 provinces, other) | {pv['params']:,} | "
            f"{pv['bytes'] / 1e6:.2f} MB | {lat['median']} / {lat['p95']} ms |", "",
            "The reader multiplies its posterior into the province slot of every template read "
            "(`plate_reader/province_expert.py`): the slot's CTC distribution times the classifier's, renormalised, "
            "the slot's probability scaled by how sure the recogniser is that a character is there. The province "
            "is the slot the recogniser misreads most (the tables above); the other slots are left alone. "
            f"onnxruntime vs torch: max |difference| {pv['max_diff']:.1e}.", "",
            f"Trained with seed {pv['seed']} at commit `{pv['commit']}`: 5 conv blocks + 2 dense layers, on the "
            "recogniser's own mix of training crops (their left columns, shifted ±2 px as the recogniser's are), "
            f"cross-entropy with label smoothing 0.05, AdamW + one-cycle LR 0.002, batch {run['batch']}, "
            f"{run['steps']:,} steps ({run['crops_seen']:,} crops seen) in {run['seconds'] / 60:.1f} min. It never "
            "sees the recogniser's outputs, so it pairs with any recogniser trained on the same data.", "",
            f"Measured with the recogniser `{pv['recogniser']}` through the reader's GA 36 template decoder "
            "(`recognize.py`; best template by score, no colour evidence): exact reads with the recogniser alone "
            "and with the classifier joining the province slot, the province slot wrong both ways, and the "
            "classifier alone:", "",
            "| set | n | exact, recogniser | exact, + province classifier | province wrong, recogniser | "
            "province wrong, + classifier | province wrong, classifier alone |", "|---|---|---|---|---|---|---|"]
    for key, f in pv["eval"].items():
        if "template_exact" in f:
            rows.append(f"| {key} | {f['n']} | {_pct(f['template_exact'])} | {_pct(f['template_exact_prov'])} | "
                        f"{_pct(f['template_province_err'])} | {_pct(f['template_province_err_prov'])} | "
                        f"{_pct(f['classifier_province_err'])} |")
    if pv.get("command"):
        rows += ["", "Rebuild:", "", "```", pv["command"], "```"]
    if pv.get("notes"):
        rows += ["", pv["notes"]]
    return [*rows, ""]


def _baseline_rows(metrics: dict) -> list[str]:
    """This model next to the previous weights, both read in this run on the same held-out crops."""
    base = metrics.get("baseline")
    if not base:
        return []
    v, bv = metrics["version"], base["version"]
    rows = [f"Against the previous weights (`{bv}`), evaluated in the same run on the same crops:", "",
            f"| set | n | exact {bv} | exact {v} | kind {bv} | kind {v} |", "|---|---|---|---|---|---|"]
    for key, fig in metrics["eval"].items():
        b = base["eval"].get(key)
        if b:
            rows.append(f"| {key} | {fig['n']} | {_pct(b['exact'])} | {_pct(fig['exact'])} | "
                        f"{_pct(b.get('kind_acc'))} | {_pct(fig.get('kind_acc'))} |")
    per, bper = metrics["eval"]["synthetic_heldout"].get("per_kind", {}), \
        base["eval"].get("synthetic_heldout", {}).get("per_kind", {})
    for name, f in per.items():
        b = bper.get(name)
        if b:
            rows.append(f"| own renderer: {name} | {f['n']} | {_pct(b['exact'])} | {_pct(f['exact'])} | "
                        f"{_pct(b['kind_acc'])} | {_pct(f['kind_acc'])} |")
    prov = [(key, fig, base["eval"][key]) for key, fig in metrics["eval"].items()
            if fig.get("province_n") and base["eval"].get(key, {}).get("province_n")]
    if prov:
        rows += ["", "The province slot alone: the share of crops whose province is read wrong, and of those wrong "
                 "reads the share that are 皖 (CCPD's prior; about 1/31 = 3.2% if they were spread evenly):", "",
                 f"| set | n | province wrong {bv} | province wrong {v} | wrong reads 皖 {bv} | "
                 f"wrong reads 皖 {v} |", "|---|---|---|---|---|---|"]
        for key, fig, b in prov:
            rows.append(f"| {key} | {fig['province_n']} | {_pct(b['province_err'])} | {_pct(fig['province_err'])} "
                        f"| {_pct(b['province_wrong_wan'])} | {_pct(fig['province_wrong_wan'])} |")
    return [*rows, ""]


def _kind_rows(fig: dict) -> list[str]:
    rows = ["| kind | n | exact | kind accuracy |", "|---|---|---|---|"]
    for name, f in fig.get("per_kind", {}).items():
        rows.append(f"| {name} | {f['n']} | {_pct(f['exact'])} | {_pct(f['kind_acc'])} |")
    return rows


def _steps(run: dict) -> str:
    done = run.get("steps_done", run["steps"])
    if done == run["steps"]:
        return f"{run['steps']:,} steps"
    return f"{done:,} steps of a {run['steps']:,}-step schedule (stopped early)"


# The recogniser checkpoints earlier releases ended with, by sha256: a fine-tuned model's card names the
# commands that rebuild each stage it started from. Stage 1 is this command's defaults (augmentation style 4
# renders 2026.12.01-3's data draw for draw); stage 2 made 2026.12.02-1.
STAGE_1 = ("2026.12.01-3", "stage1-rec-ema.pt", "0964dd75114f476dd23adbba26bddf6aac97da25ad0c9a2705719dce6d63482b",
           "python -m plate_reader.training build-and-train --sources /work/.mirror --out /tmp/stage1 --card ''")
STAGE_2 = ("2026.12.02-1", "stage2-rec-ema.pt", "c96405aeade36056ec2bbcac789833a3962c093945067c2d9c410f4ce01a71b5",
           "python -m plate_reader.training build-and-train --sources /work/.mirror --out /tmp/stage2 --card '' \\\n"
           "    --synthetic 70000 --real-copies 24 --real-share 0.15 --rec-steps 5000 --kind-steps 1200 "
           "--seed 20261201 --threads 2 \\\n"
           "    --extra-synthetic 40000 --extra-style 5 --extra-share 0.45 --lr 0.001 --init stage1-rec-ema.pt")
LINEAGE = {STAGE_1[2]: [STAGE_1], STAGE_2[2]: [STAGE_1, STAGE_2]}


def _init_name(metrics: dict) -> str:
    init = metrics["train"]["rec"].get("init") or {}
    if init.get("format") == "onnx":
        return "init-rec.onnx"
    stages = LINEAGE.get(init.get("sha256", ""))
    return stages[-1][1] if stages else "stage1-rec-ema.pt"


def _reproduce(metrics: dict) -> str:
    d, tr = metrics["data"], metrics["train"]
    cmd = (f"    --synthetic {d['synthetic_train']} --real-copies {d['real_copies']} --real-share {d['real_share']} "
           f"--rec-steps {tr['rec']['steps']} --kind-steps {tr['kind']['steps']} --seed {metrics['seed']} "
           f"--threads {metrics['threads']}")
    if d.get("real_swap"):
        cmd += f" --real-swap {d['real_swap']}"
    if d.get("extra_synthetic"):
        cmd += (f" \\\n    --extra-synthetic {d['extra_synthetic']} --extra-style {d['extra_style']} "
                f"--extra-share {d['extra_share']}")
    if tr["rec"].get("lr", 3e-3) != 3e-3:
        cmd += f" --lr {tr['rec']['lr']:g}"
    if tr["rec"].get("init"):
        cmd += f" --init {_init_name(metrics)}"
    done = tr["rec"].get("steps_done", tr["rec"]["steps"])
    return cmd + (f" --rec-stop-after {done}" if done != tr["rec"]["steps"] else "")


def _lineage(metrics: dict) -> list[str]:
    """A fine-tuned model is rebuilt stage by stage: the runs it started from, then this one."""
    init = metrics["train"]["rec"].get("init")
    if not init:
        return []
    if init.get("format") == "onnx":
        return _onnx_lineage(metrics, init)
    stages = LINEAGE.get(init["sha256"])
    head = ("This recogniser was **fine-tuned** from an earlier run's recogniser (`--init`): "
            f"`{init['path']}` after {init['step']:,} of {init['steps']:,} steps, sha256 `{init['sha256']}`. ")
    if not stages:
        return [
            head + "To rebuild it, first run stage 1 — the recipe of `2026.12.01-3`, which is this command's "
            "defaults (augmentation style 4 renders that run's data draw for draw) — then keep its recogniser "
            "checkpoint aside and run this command in the same work folder (it reuses stage 1's rendered crops from "
            "the cache there, and writes its own checkpoints over `rec-ema.pt`):",
            "", "```", STAGE_1[3], "cp /tmp/cleangate-train/rec-ema.pt stage1-rec-ema.pt", "```", "",
        ]
    n = len(stages) + 1
    lines = [head + f"This is stage {n} of {n}. To rebuild it, run the stages below in one work folder (the "
             "default `/tmp/cleangate-train`: each stage reuses the crops the earlier ones rendered into its cache, "
             "and writes its checkpoints over `rec-ema.pt`), keeping each stage's recogniser checkpoint aside "
             "(its sha256 is given) before the next starts; then run the last command below.", ""]
    for i, (version, name, sha, cmd) in enumerate(stages, 1):
        lines += [f"Stage {i} (`{version}`; its checkpoint's sha256 `{sha}`):", "", "```", cmd,
                  f"cp /tmp/cleangate-train/rec-ema.pt {name}", "```", ""]
    return [*lines, f"Stage {n} (this model):", ""]


STYLE_5 = ("cut from the plate as above (no loose crops with car body round the plate): half the holder frames "
           "with a dealer's strip 12–22% of the plate's height under the plate, mud splashes on the lower plate "
           "(50%), rotation σ 6° and stronger shear and perspective, gamma-dark night (γ 1.3–2.1), IR fill light "
           "(mostly grey, bright), blooming over-exposure, JPEG q25–85 on 90% of crops")
STYLE_6 = (f"style 5's camera, with {100 * FONT_PLATES:.0f}% of the plates drawn in one system font each where it "
           "has the character (WenQuanYi Zen Hei and Micro Hei, AR PL UKai and UMing, DejaVu Sans Bold and "
           f"Condensed Bold, Liberation Sans Bold and Narrow Bold; Debian's {', '.join(TRAINING_PACKAGES.split())}, "
           "drawn at run time and never committed; never Noto, the evaluation renderers' font), plain and with a 4 px "
           "stroke")


STYLE_7 = (f"style 6 with {100 * FONT_PLATES_7:.0f}% of the plates in a font, chosen among style 6's and nine more "
           "(LXGW WenKai Bold, cwTeX HeiBold, BabelStone Han, HanaMin A; Lato Black, Cantarell ExtraBold, Carlito "
           f"Bold, Hack Bold, JetBrains Mono ExtraBold; Debian's {', '.join(MORE_PACKAGES.split())})")
STYLE_8 = ("style 7 whose double-row plates draw both rows' characters from the other glyph sets (real cut "
           "characters, the second drawing, the plate font) as often as single-row plates do, where styles 4-7 gave "
           "them a third of that (82% of their provinces were one drawing)")


def _extra_styles(d: dict) -> list[int]:
    """The run's extra styles, as ``--extra-style`` gave them (``5`` or ``5,6``); none without extra data."""
    return [int(v) for v in str(d.get("extra_style", "")).split(",") if v] if d.get("extra_synthetic") else []


def _extra_text(d: dict) -> str:
    styles = _extra_styles(d)
    if not styles:
        return ""
    each = d["extra_synthetic"]
    share = 100 * d["extra_share"] / len(styles)
    parts = []
    for st in styles:
        how = {5: STYLE_5, 6: STYLE_6, 7: STYLE_7, 8: STYLE_8}.get(st, f"augmentation style {st}")
        parts.append(f" **Style {st}** ({each:,} extra crops, {share:.1f}% of each recogniser batch, their own "
                     f"seed; double-row 30% and yellow-green 20% of them): {how}.")
    return "".join(parts)


def _onnx_lineage(metrics: dict, init: dict) -> list[str]:
    """Fine-tuned from a release's ONNX file: the repository holds it, so one command rebuilds this model."""
    commit, version = metrics["commit"], init.get("version") or "the previous release"
    return [
        f"This recogniser was **fine-tuned** from the released recogniser `{version}` (`--init` with its ONNX "
        f"file, sha256 `{init['sha256']}`, as committed at `{commit}`, the commit this run started from). The "
        "export folds each BatchNorm into its convolution; `unfold.py` restores them, measuring each layer's "
        f"statistics on {init.get('unfold_sample', 0):,} training crops, so that training starts from the function "
        f"the file computes (max |difference| {init.get('unfold_max_diff', 0):.1e}) with BatchNorm working as it did "
        "when the file was trained. "
        f"How `{version}` itself was built is in its card (`git show {commit}:plate_reader/training/MODEL_CARD.md`). "
        "To rebuild this model, take the file out of the repository and run the command below:",
        "", "```", f"git show {commit}:plate_reader/weights/plate_rec.onnx > init-rec.onnx",
        f"git show {commit}:plate_reader/weights/plate_rec.json > init-rec.json", "```", "",
    ]


def _font_packages(d: dict) -> list[str]:
    styles = _extra_styles(d)
    if not any(st >= 6 for st in styles):
        return []
    more = f" {MORE_PACKAGES}" if any(st >= 7 for st in styles) else ""
    return [f"apt-get install {TRAINING_PACKAGES}{more} \\", f"    {HELD_OUT_PACKAGES}   # styles 6/7; the unseen-font set"]


def _font_rows(d: dict) -> list[str]:
    """The Debian font packages a style-6/7 run draws with, and the unseen-font set's, with their fonts' licences."""
    styles = _extra_styles(d)
    if not any(st >= 6 for st in styles):
        return []
    uses = [(TRAINING_PACKAGES, "training (style 6" + (" and up)" if any(st >= 7 for st in styles) else ")"))]
    if any(st >= 7 for st in styles):
        uses.append((MORE_PACKAGES, "training (style 7 and up)"))
    uses.append((HELD_OUT_PACKAGES, "the unseen-font held-out set only (never trained on)"))
    rows = ["| Debian package | licence of its font files | used for |", "|---|---|---|"]
    rows += [f"| {pkg} | {FONT_LICENCES[pkg]} | {use} |" for names, use in uses for pkg in names.split()]
    return ["", "Fonts (drawn at training time from the machine's Debian packages; no font file is committed or "
            "shipped, and nothing drawn with them leaves the training machine except the trained weights):", "",
            *rows]


def render(metrics: dict, args: argparse.Namespace) -> str:
    d, tr, lat, onnx = metrics["data"], metrics["train"], metrics["latency_ms_1_thread"], metrics["onnx"]
    src_rows = ["| repository | commit | licence | used for |", "|---|---|---|---|"]
    src_rows += [f"| [{s.repo}](https://github.com/{s.repo}) | `{s.commit}` | {s.licence} | {s.use} |"
                 for s in SOURCES]
    errors = metrics["eval"]["ccpd_test"].get("errors", [])
    lines = [
        "# Model card: cleangate plate recogniser, plate-kind classifier and province classifier"
        if metrics.get("prov") else "# Model card: cleangate plate recogniser and plate-kind classifier",
        "",
        f"Version `{metrics['version']}`, trained from commit `{metrics['commit']}` with seed {metrics['seed']} "
        f"on {metrics['threads']} CPU threads. Written by `python -m plate_reader.training build-and-train`; "
        "every figure below comes from that run, measured on the exported ONNX files with onnxruntime.",
        "",
        "## Files (shipped in the wheel, nothing downloaded at run time)",
        "",
        "| file | what | parameters | size | time per crop, 1 onnxruntime thread, batch 1 (median / p95) |",
        "|---|---|---|---|---|",
        f"| `plate_reader/weights/plate_rec.onnx` + `.json` | CTC recogniser, gray 32×128 in, 32 steps × "
        f"{len(__import__('plate_reader.training.spec', fromlist=['ALPHABET']).ALPHABET) + 1} classes out | "
        f"{metrics['params']['rec']:,} | {onnx['rec_bytes'] / 1e6:.2f} MB | {lat['rec']['median']} / "
        f"{lat['rec']['p95']} ms |",
        f"| `plate_reader/weights/plate_kind.onnx` + `.json` | kind/colour classifier, BGR 40×80 in, 7 logits | "
        f"{metrics['params']['kind']:,} | {onnx['kind_bytes'] / 1e6:.2f} MB | {lat['kind']['median']} / "
        f"{lat['kind']['p95']} ms |",
        "",
        f"onnxruntime vs torch on the same crops: max |difference| {onnx['rec_max_diff']:.1e} (recogniser), "
        f"{onnx['kind_max_diff']:.1e} (classifier). The interface (inputs, alphabet, labels, double-row "
        "stitching) is in the json files and `plate_reader/layout.py`; see the issue-13 models contract.",
        "",
        "## Evaluation",
        "",
        *_eval_rows(metrics),
        "",
        "Per kind, own renderer, held-out seed (never trained on; the renderer is the training one, so this "
        "measures fit, not transfer — the independent checks are the reader's benchmarks: EasyPR, the CCPD "
        "held-out split and the Noto-font `synth.py` set):",
        "",
        *_kind_rows(metrics["eval"]["synthetic_heldout"]),
        "",
        *_baseline_rows(metrics),
        "CCPD held-out misreads (truth → read): " + (", ".join(f"{a}→{b or '∅'}" for a, b in errors) or "none"),
        "",
        "These are raw best-path reads. The reader decodes the same outputs through the GA 36 template lattice "
        "(`recognize.py`), which the figures above do not include.",
        "",
        "## Data",
        "",
        *src_rows,
        "",
        "Snapshots were read at exactly these commits (`git archive <commit>`); nothing from them is committed "
        "here (no glyph image, no photo, no font). Not used, ever: the EasyPR photos (evaluation only, "
        "non-commercial licence) and `plate_reader/synth.py` (kept as an independent evaluation renderer).",
        *_font_rows(d),
        "",
        f"- **Synthetic** ({d['synthetic_train']:,} training crops, {d['synthetic_eval']:,} held-out): "
        "`render.py` composes GA 36-2018 plates at 1 px/mm from the glyph images — blue; yellow single-row "
        "(incl. 学 learner and 挂 trailer); yellow double-row (220 mm glyphs: 80×60 mm top row, 65×110 mm bottom "
        "row; 挂 trailers); green small new-energy (gradient background, 8 characters); yellow-green large "
        "new-energy; white police (red 警, authority O); black 港/澳/领/使 (red 使/领). About a third of the "
        "characters of single-row and new-energy plates come from the alternative glyph sets: characters cut "
        "from real plates (wzh191920), huangxinping's glyphs and platechar.ttf letters. Kinds are weighted "
        "towards trucks (double-row yellow 20%, yellow-green 15%), provinces uniform with "
        f"晋 at {100 * PROVINCE_JIN:.0f}% on top; the province slot takes an alternative shape "
        f"{100 * PROVINCE_VARIETY:.0f}% of the time (real-plate characters twice as often as "
        "huangxinping's), the other slots 35%.",
        "- **Augmentations** (`augment.py`): holder frames with text strips, bolts, mud and hard shadows; the "
        "plate placed in a cluttered scene under rotation (σ 4°), shear and perspective; the crop taken from "
        "corners jittered like a localiser's (σ 3% of the width, 8% of the height), then 65% with 0.5–1.5× the "
        "reader's padding, 20% cut tight to the corners (like CCPD's 94×24 thumbnails), 15% the axis-aligned "
        "box round the corners, unrectified (a detector's box); 18–70 px high, rendered 3× and shrunk; "
        "easy and hard crops mixed (strength 0.4–1.1); motion or defocus blur; colour cast; night/IR "
        "(dark, desaturated), over-exposure, brightness/contrast; Gaussian noise; JPEG q30–90 (80% of crops); "
        "±2 px shifts at training time." + _extra_text(d),
        f"- **Real (CCPD)**: the 600 photos split by plate text (`ccpd_split.json`, salted hash, 20% of plates "
        f"held out): {d['ccpd_train_photos']} training photos → {d['ccpd_train_crops']:,} crops "
        f"({d['real_copies']} crops per photo, cut as the synthetic ones are and lightly degraded), drawn for {100 * d['real_share']:.0f}% "
        f"of each recogniser batch; {d['ccpd_test_photos']} test photos never trained on. CCPD is 98% 皖 and "
        "all blue: the province prior and the other colours come from the synthetic data." + (
            f" **Province swap** (`province_swap.py`, `--real-swap {d['real_swap']}`): on "
            f"{100 * d['real_swap']:.0f}% of the training copies the photo's province glyph is replaced, before the "
            "crop is cut, by another province's (uniform over the other 30): the box follows from the four "
            "labelled corners mapped by their homography (GA 36 slot, 45×90 mm at 15.5 mm), the original glyph is "
            "inpainted away, the new one (GA 36 drawing 50%, a character cut from a real plate 35%, huangxinping's "
            "15%) drawn at the plate's own ink level, placed where the original character was found, blurred to "
            "its sharpness and given the photo's noise; the rest keep their 皖." if d.get("real_swap") else ""),
        f"- **Gate crops** (`--gate-crops DIR`, a `gate-service crops export` folder): {d['gate_crops']} in this "
        "run. Corrected and guard-checked rows are oversampled; unchecked camera labels count half.",
        f"- Data build: {d['build_seconds'] / 60:.1f} min ({args.workers} processes).",
        "",
        "## Training",
        "",
        "- Recogniser: all-convolutional CTC network (no recurrent layer; after the rows are folded, a 1×3 and "
        "a dilated 1×3 convolution give each step about five characters of context), AdamW + one-cycle LR "
        f"{tr['rec'].get('lr', 3e-3):g}" + (" (fine-tuning: see Reproduce)" if tr["rec"].get("init") else "")
        + f", batch {tr['rec']['batch']}, {_steps(tr['rec'])} ({tr['rec']['crops_seen']:,} crops seen) in "
        f"{tr['rec']['seconds'] / 60:.1f} min; the exported weights are the exponential moving average "
        f"(decay {tr['rec'].get('ema_decay', '–')}) of the weights and BatchNorm statistics.",
        f"- Classifier: 4 conv blocks + 2 dense layers, cross-entropy with label smoothing 0.05, "
        f"{tr['kind']['steps']:,} steps in {tr['kind']['seconds'] / 60:.1f} min.",
        f"- Whole command, data to card: **{metrics['wall_seconds'] / 60:.1f} min wall time** on "
        f"{metrics['threads']} threads of a shared 2-core machine (other jobs were running).",
        "",
        "## Reproduce",
        "",
        "```",
        "pip install -e '.[train]'            # torch==2.13.0 (CPU wheel), onnx",
        "apt-get install p7zip-full           # the wzh191920 character archives are 7z",
        *_font_packages(d),
        "```",
        "",
        *_lineage(metrics),
        "```",
        "python -m plate_reader.training build-and-train --sources /work/.mirror --out plate_reader/weights \\",
        _reproduce(metrics),
        "```",
        "",
        "`--sources` holds the snapshots as `<owner>+<name>/repo` git directories; a missing one stops the "
        "command with its name and commit. A site fine-tunes on its own plates by adding "
        "`--gate-crops <export folder>` (repeatable).",
        "",
        *(["## Run notes (this model)", "", metrics["notes"], ""] if metrics.get("notes") else []),
        *_prov_section(metrics),
    ]
    return "\n".join(lines)


def write(path: Path, metrics: dict, args: argparse.Namespace) -> None:
    Path(path).write_text(render(metrics, args), encoding="utf-8")

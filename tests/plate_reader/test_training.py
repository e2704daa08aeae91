"""The training pipeline end to end on a tiny source tree drawn here (seconds, not minutes), and its parts.

The real sources (GA 36 glyph images, CCPD photos, ...) are public snapshots that are not redistributed in
this repository; the tree below has the same layout, with glyphs drawn by OpenCV and CCPD-named photos of
plates rendered from them, so every step — extraction layout, CCPD parsing and split, rendering, augmentation,
both trainings, ONNX export, evaluation, model card — runs for real.
"""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import plate_reader.weights
from plate_reader import plates
from plate_reader.training import ccpd, glyphs, render, spec
from plate_reader.training.augment import camera_crop
from tests.plate_reader.conftest import ccpd_photo_reader

CCPD_DIR = "julienkolani+ccpd-character-recognition/TP/TP1/CCPD_SubDataset"
SHIPPED = Path(plate_reader.weights.__file__).parent


def _glyph(ch: str) -> np.ndarray:
    """A black-on-white glyph cell: Hershey text for ASCII, a pattern seeded by the code point otherwise."""
    img = np.full((90, 45), 255, np.uint8)
    if ch.isascii():
        cv2.putText(img, ch, (3, 75), cv2.FONT_HERSHEY_SIMPLEX, 2.2, 0, 6)
    else:
        rng = np.random.default_rng(ord(ch))
        for _ in range(6):
            x, y = rng.integers(0, 35), rng.integers(0, 80)
            cv2.rectangle(img, (int(x), int(y)), (int(x) + 10, int(y) + 6), 0, -1)
    return img


def _ccpd_name(i: int, text: str, quad: np.ndarray) -> str:
    tl, tr, br, bl = (f"{int(x)}&{int(y)}" for x, y in quad)
    idx = [ccpd.PROVINCES.index(text[0]), ccpd.ALPHABETS.index(text[1])] + [ccpd.ADS.index(c) for c in text[2:]]
    return f"{i:04d}-90_90-0&0_1&1-{br}_{bl}_{tl}_{tr}-{'_'.join(map(str, idx))}-100-50.jpg"


@pytest.fixture(scope="module")
def cli():
    pytest.importorskip("torch", reason="the [train] extra (torch) is not installed")
    from plate_reader.training import __main__

    return __main__


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("extracted")
    fonts = root / "yyq19990828+chinese_license_plate_generator" / "font_model"
    fonts.mkdir(parents=True)
    for ch in spec.ALPHABET:
        cv2.imencode(".jpg", _glyph(ch))[1].tofile(str(fonts / f"140_{ch}.jpg"))
    bank = glyphs.load(root)
    rng = np.random.default_rng(5)
    for i in range(10):
        sub = root / CCPD_DIR / ("train" if i < 7 else "test")
        sub.mkdir(parents=True, exist_ok=True)
        plate = render.render_plate(bank, rng, "blue")
        photo = np.full((300, 400, 3), 90, np.uint8)
        small = cv2.resize(plate.image, (176, 56))
        photo[120:176, 100:276] = small
        quad = np.float32([[100, 120], [276, 120], [276, 176], [100, 176]])
        cv2.imwrite(str(sub / _ccpd_name(i, plate.text, quad)), photo)
    return root


def test_ccpd_names_give_plate_and_corners():
    # A real CCPD file name (the subset's first test photo); corners run from bottom-right clockwise.
    name = "0147365900383-92_89-300&557_484&637-480&635_298&621_296&556_478&570-0_0_5_27_28_26_29-107-312.jpg"
    plate, quad = ccpd.parse_name(name)
    assert plate == "皖A F3425".replace(" ", "")
    np.testing.assert_array_equal(quad, [[296, 556], [478, 570], [480, 635], [298, 621]])
    with pytest.raises(ValueError):
        ccpd.parse_name("not-a-ccpd.jpg")


def test_committed_split_holds_out_whole_plates():
    split = ccpd.load_split()
    assert len(split["test"]) >= 100 and len(split["train"]) >= 400
    assert not set(split["test"]) & set(split["train"])
    plate_of = {n: ccpd.parse_name(Path(n).name)[0] for n in split["test"] + split["train"]}
    test_plates = {plate_of[n] for n in split["test"]}
    assert not test_plates & {plate_of[n] for n in split["train"]}


def test_renderer_gives_valid_plates_of_every_kind(tree):
    bank = glyphs.load(tree)
    rng = np.random.default_rng(0)
    expected = {"blue": ("blue",), "yellow": ("yellow",), "yellow_double": ("yellow",), "green": ("green",),
                "yellow_green": ("yellow-green",), "white": ("white",), "black": ("black",)}
    for kind in render.KINDS:
        for _ in range(12):
            p = render.render_plate(bank, rng, kind)
            parsed = plates.parse(p.text)
            assert set(expected[kind]) & set(parsed.expected_colors), (kind, p.text)
            assert p.image.shape[:2] == ((220, 440) if p.double else (140, 480 if len(p.text) == 8 else 440))
            crop = camera_crop(p.image, rng)
            assert crop.dtype == np.uint8 and 16 <= crop.shape[0] <= 80 and crop.shape[1] > crop.shape[0]


def test_build_and_train_end_to_end_exports_loadable_models(cli, tree, tmp_path):
    import onnxruntime as ort

    out, card = tmp_path / "weights", tmp_path / "MODEL_CARD.md"
    rc = cli.main(["build-and-train", "--extracted", str(tree), "--work", str(tmp_path / "work"),
                   "--out", str(out), "--split", str(tmp_path / "split.json"), "--card", str(card),
                   "--synthetic", "60", "--eval-synthetic", "28", "--real-copies", "2", "--rec-steps", "3",
                   "--kind-steps", "3", "--prov-steps", "3", "--batch", "16", "--workers", "1", "--threads", "1",
                   "--baseline", str(SHIPPED)])
    assert rc == 0
    split = json.loads((tmp_path / "split.json").read_text(encoding="utf-8"))
    assert len(split["test"]) + len(split["train"]) == 10
    rec_spec = json.loads((out / "plate_rec.json").read_text(encoding="utf-8"))
    kind_spec = json.loads((out / "plate_kind.json").read_text(encoding="utf-8"))
    assert rec_spec["alphabet"] == list(spec.ALPHABET) and rec_spec["blank"] == 0
    assert rec_spec["layout"] == "stitched" and rec_spec["output"] == "log_softmax"
    assert kind_spec["labels"] == ["blue", "yellow", "yellow_double", "green", "yellow_green", "white", "black"]
    prov_spec = json.loads((out / "plate_prov.json").read_text(encoding="utf-8"))
    assert prov_spec["labels"] == [*plates.PROVINCES, "other"] and prov_spec["input"]["of"] == "plate_rec"
    for name, js, classes in (("plate_rec", rec_spec, len(spec.ALPHABET) + 1), ("plate_kind", kind_spec, 7),
                              ("plate_prov", prov_spec, 32)):
        sess = ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in sess.get_inputs()] == ["image"]
        inp = js["input"]
        x = np.zeros((3, inp["channels"], inp["height"], inp["width"]), np.float32)
        y = sess.run(["logits"], {"image": x})[0]
        assert y.shape[0] == 3 and y.shape[-1] == classes
    # The reader loads the three from the folder and names them.
    from plate_reader.reader import PlateReader

    assert set(PlateReader("own", weights=out).models) == {"plate_rec", "plate_kind", "plate_prov"}
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["eval"]["synthetic_heldout"]["n"] == 28
    assert metrics["eval"]["ccpd_test"]["n"] == len(split["test"]) > 0
    assert metrics["train"]["rec"]["steps_done"] == 3
    # The province slot on real backgrounds: the held-out photos with every province swapped.
    swapped = metrics["eval"]["ccpd_test_province_swapped"]
    assert swapped["n"] == swapped["province_n"] == 2 * len(split["test"])
    assert 0.0 <= swapped["province_err"] <= 1.0
    # The shipped weights read the very same held-out crops in the same run (the card's old-vs-new table).
    base = metrics["baseline"]
    assert base["version"] == json.loads((SHIPPED / "plate_rec.json").read_text(encoding="utf-8"))["version"]
    assert {k: v["n"] for k, v in base["eval"].items()} == {k: v["n"] for k, v in metrics["eval"].items()}
    text = card.read_text(encoding="utf-8")
    assert "62e63cc59f33b1a6d96669ff827e0083d5f97548" in text and "CCPD held-out" in text
    assert f"Against the previous weights (`{base['version']}`)" in text
    # The province classifier's figures: through the template decoder with and without it, and alone.
    prov = metrics["prov"]
    assert prov["train"]["steps"] == 3 and prov["recogniser"] == metrics["version"] == prov["version"]
    fig = prov["eval"]["ccpd_test_province_swapped"]
    assert {"template_exact", "template_exact_prov", "classifier_province_err"} <= set(fig)
    assert fig["n"] == swapped["n"] and 0.0 <= fig["template_exact_prov"] <= 1.0
    assert "## Province classifier" in text and "plate_prov.onnx" in text and "exact, + province classifier" in text


def test_fine_tuning_starts_from_a_previous_run_and_says_so(cli, tree, tmp_path):
    """Stage 2 of a fine-tuned model: --init from stage 1's checkpoint, extra style-5 crops; the card tells how."""
    import hashlib

    common = ["--extracted", str(tree), "--split", str(tmp_path / "split.json"), "--synthetic", "40",
              "--eval-synthetic", "12", "--real-copies", "1", "--kind-steps", "2", "--batch", "8", "--workers", "1",
              "--threads", "1"]
    assert cli.main(["build-and-train", *common, "--work", str(tmp_path / "s1"), "--out", str(tmp_path / "o1"),
                     "--card", "", "--rec-steps", "3", "--prov-steps", "2"]) == 0
    assert (tmp_path / "o1" / "plate_prov.onnx").is_file()
    stage1 = tmp_path / "s1" / "rec-ema.pt"
    assert stage1.exists(), "a run shorter than the checkpoint interval still leaves its checkpoint"
    digest = hashlib.sha256(stage1.read_bytes()).hexdigest()
    card = tmp_path / "CARD.md"
    # Stage 2 written over stage 1's folder without a province classifier: stage 1's is removed with it, so a
    # folder never pairs one run's recogniser with another's province classifier.
    assert cli.main(["build-and-train", *common, "--work", str(tmp_path / "s2"), "--out", str(tmp_path / "o1"),
                     "--card", str(card), "--rec-steps", "2", "--init", str(stage1), "--lr", "1e-3",
                     "--extra-synthetic", "20", "--prov-steps", "0"]) == 0
    assert not (tmp_path / "o1" / "plate_prov.onnx").exists() and not (tmp_path / "o1" / "plate_prov.json").exists()
    metrics = json.loads((tmp_path / "o1" / "metrics.json").read_text(encoding="utf-8"))
    assert "prov" not in metrics
    assert metrics["train"]["rec"]["init"]["sha256"] == digest and metrics["train"]["rec"]["init"]["step"] == 3
    assert metrics["train"]["rec"]["lr"] == 1e-3
    assert metrics["data"]["extra_synthetic"] == 20 and metrics["data"]["extra_style"] == "5"
    assert metrics["eval"]["synthetic_heldout_style5"]["n"] == 8
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "s2" / "chunks").iterdir()) == ["v4", "v4", "v5", "v5"]
    text = card.read_text(encoding="utf-8")
    assert "fine-tuned" in text and digest in text and "--init stage1-rec-ema.pt" in text
    assert "--extra-synthetic 20 --extra-style 5" in text


def _fonts_installed(table: dict) -> bool:
    return any(Path(path).exists() for path, _ in table.values())


def test_fine_tuning_from_a_released_onnx_file_with_two_extra_styles(cli, tree, tmp_path):
    """The next release starts from the committed ONNX file (no checkpoint needed), mixes styles 5 and 6, and is
    measured on plates drawn in fonts no run trains on; the card says how to take the file out of git."""
    import hashlib

    if not (_fonts_installed(glyphs.SYSTEM_FONTS) and _fonts_installed(glyphs.HELD_OUT_FONTS)):
        pytest.skip("the style-6 or held-out fonts are not installed (scripts/test installs them as root)")
    common = ["--extracted", str(tree), "--split", str(tmp_path / "split.json"), "--synthetic", "40",
              "--eval-synthetic", "12", "--real-copies", "1", "--kind-steps", "2", "--batch", "8", "--workers", "1",
              "--threads", "1", "--rec-steps", "2", "--extra-synthetic", "20", "--prov-steps", "2"]
    release = SHIPPED / "plate_rec.onnx"
    card = tmp_path / "CARD.md"
    assert cli.main(["build-and-train", *common, "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
                     "--card", str(card), "--init", str(release), "--extra-style", "5,6", "--lr", "1e-4"]) == 0
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text(encoding="utf-8"))
    init = metrics["train"]["rec"]["init"]
    assert init["format"] == "onnx" and init["sha256"] == hashlib.sha256(release.read_bytes()).hexdigest()
    assert init["version"] == json.loads((SHIPPED / "plate_rec.json").read_text(encoding="utf-8"))["version"]
    assert init["unfold_max_diff"] < 1e-3 and init["unfold_sample"] > 0
    assert metrics["data"]["extra_style"] == "5,6" and metrics["data"]["extra_total"] == 40
    styles = sorted(p.name.split("-")[1] for p in (tmp_path / "w" / "chunks").iterdir())
    assert styles.count("v5") == 2 and styles.count("v6") == 2, styles
    assert metrics["eval"]["synthetic_heldout_unseen_fonts"]["n"] == 8
    text = card.read_text(encoding="utf-8")
    assert "git show" in text and "plate_rec.onnx > init-rec.onnx" in text and "--init init-rec.onnx" in text
    assert "--extra-style 5,6" in text and "**Style 6**" in text
    assert "a font no run trains on" in text


@pytest.mark.parametrize("styles", ["5,9", "6,6", "five", ""])
def test_extra_styles_are_checked_before_any_work(cli, tmp_path, styles):
    with pytest.raises(SystemExit, match="--extra-style"):
        cli.main(["build-and-train", "--sources", str(tmp_path / "none"), "--work", str(tmp_path / "w"),
                  "--extra-synthetic", "10", "--extra-style", styles])
    assert not (tmp_path / "w").exists()


def test_unfolded_release_computes_what_its_onnx_file_computes(tree):
    """BatchNorm folded away by the export comes back: eval mode equals the file, training mode stays close."""
    torch = pytest.importorskip("torch", reason="the [train] extra (torch) is not installed")
    from plate_reader.layout import normalise
    from plate_reader.training import data, nets, unfold

    arrays = data.synthetic(glyphs.load(tree), 96, 3, workers=1)
    x = normalise(arrays.rec, spec.REC_INPUT)
    net = nets.Recogniser(len(spec.ALPHABET) + 1)
    assert unfold.load_onnx(net, SHIPPED / "plate_rec.onnx", x[:64]) < 1e-3
    with torch.no_grad():
        net.eval()
        want = net(torch.from_numpy(x[64:])).argmax(-1)
        net.train()
        got = net(torch.from_numpy(x[64:])).argmax(-1)
    # Batch statistics of 32 unseen crops instead of the measured ones (and dropout): most steps unchanged.
    assert (want == got).float().mean().item() > 0.9
    with pytest.raises(ValueError, match="convolution"):
        unfold.load_onnx(nets.KindNet(len(spec.LABELS)), SHIPPED / "plate_rec.onnx", x[:8])


def test_card_of_a_stage_3_model_names_every_stage():
    """Fine-tuned from 2026.12.02-1's checkpoint (known by its sha256): the card gives all three commands."""
    import argparse
    import copy

    from plate_reader.training import model_card

    metrics = copy.deepcopy(json.loads((SHIPPED / "metrics.json").read_text(encoding="utf-8")))
    metrics["train"]["rec"]["init"] = {"path": "stage2-rec-ema.pt", "sha256": model_card.STAGE_2[2],
                                       "step": 5000, "steps": 5000}
    metrics["data"]["real_swap"] = 0.75
    text = model_card.render(metrics, argparse.Namespace(workers=2))
    assert "stage 3 of 3" in text and "Stage 3 (this model)" in text
    assert model_card.STAGE_1[2] in text and model_card.STAGE_2[2] in text
    assert "--init stage1-rec-ema.pt" in text and text.count("--init stage2-rec-ema.pt") == 1
    assert "--real-swap 0.75" in text and "Province swap" in text


def test_card_names_each_font_package_with_its_licence():
    """A style-7 run draws in style 6's and 7's fonts and measures on the held-out fonts: each package, licence
    and use appears once; a run without font styles lists none."""
    import argparse
    import copy

    from plate_reader.training import model_card

    metrics = copy.deepcopy(json.loads((SHIPPED / "metrics.json").read_text(encoding="utf-8")))
    metrics["data"].update(extra_synthetic=100, extra_style="5,7", extra_share=0.45)
    text = model_card.render(metrics, argparse.Namespace(workers=2))
    for pkg, licence in glyphs.FONT_LICENCES.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {pkg} |"))
        assert licence in row
        held_out = pkg in glyphs.HELD_OUT_PACKAGES.split()
        assert ("never trained on" in row) == held_out and ("style 7" in row) == (pkg in glyphs.MORE_PACKAGES)
    metrics["data"].update(extra_style="5")
    assert "| fonts-" not in model_card.render(metrics, argparse.Namespace(workers=2))


def test_augmentation_styles_are_named():
    from plate_reader.training import data

    with pytest.raises(ValueError, match="style"):
        data.synthetic(None, 1, 0, style=3)


def test_style5_crops_are_camera_crops(tree):
    bank = glyphs.load(tree)
    rng = np.random.default_rng(5)
    for kind in render.KINDS:
        for _ in range(6):
            crop = camera_crop(render.render_plate(bank, rng, kind).image, rng, style=5)
            assert crop.dtype == np.uint8 and crop.ndim == 3 and 16 <= crop.shape[0] <= 80
            assert crop.shape[1] > crop.shape[0]


def test_style6_draws_plates_in_system_fonts_and_leaves_styles_4_and_5_alone(tree):
    if not _fonts_installed(glyphs.SYSTEM_FONTS):
        pytest.skip("no font of glyphs.SYSTEM_FONTS installed (scripts/test installs them as root)")
    plain, fonts = glyphs.load(tree), glyphs.load(tree, fonts=True)
    names = glyphs.font_sets(fonts)
    assert names and not glyphs.font_sets(plain)
    assert not any("noto" in n for n in names)
    for kind in render.KINDS:
        # Styles 4 and 5 render draw for draw as before, whatever else the bank holds.
        a = render.render_plate(plain, np.random.default_rng(11), kind).image
        b = render.render_plate(fonts, np.random.default_rng(11), kind).image
        assert (a == b).all(), kind
    rng = np.random.default_rng(12)
    made = [render.render_plate(fonts, rng, kind, fonts=True) for kind in render.KINDS for _ in range(40)]
    assert all(plates.is_valid(p.text) for p in made)
    drawn = [p for p in made if p.font]
    # About FONT_PLATES of the plates are drawn in one of the fonts, every font in turn.
    assert 0.2 * len(made) <= len(drawn) <= 0.5 * len(made), len(drawn)
    assert {p.font for p in drawn} == set(names)
    assert not any(p.font for p in (render.render_plate(fonts, rng, "blue") for _ in range(40)))


def test_style7_draws_more_fonts_on_more_plates_and_leaves_style_6_alone(tree):
    from plate_reader.training import data

    if not (_fonts_installed(glyphs.SYSTEM_FONTS) and _fonts_installed(glyphs.MORE_FONTS)):
        pytest.skip("the style-6/7 fonts are not installed (scripts/test installs them as root)")
    six = glyphs.load(tree, fonts=True)
    seven = glyphs.load(tree, fonts=True, font_table={**glyphs.SYSTEM_FONTS, **glyphs.MORE_FONTS})
    assert set(glyphs.font_sets(six)) < set(glyphs.font_sets(seven))
    assert glyphs.font_sets(seven, glyphs.SYSTEM_FONTS) == glyphs.font_sets(six)
    # Style 6's chunks are the same whichever bank renders them: its data can be rebuilt as it was made.
    a = data.synthetic(six, 30, 9, workers=1, style=6)
    b = data.synthetic(seven, 30, 9, workers=1, style=6)
    assert (a.rec == b.rec).all() and a.texts == b.texts
    rng = np.random.default_rng(13)
    names = glyphs.font_sets(seven)
    made = [render.render_plate(seven, rng, kind, fonts=True, font_share=render.FONT_PLATES_7)
            for kind in render.KINDS for _ in range(60)]
    drawn = [p for p in made if p.font]
    assert 0.4 * len(made) <= len(drawn) <= 0.6 * len(made), len(drawn)
    assert {p.font for p in drawn} == set(names)
    assert not {p.font for p in drawn} & {f"font:{n}" for n in glyphs.HELD_OUT_FONTS}


class _CountingBank(glyphs.GlyphBank):
    """A bank that counts the glyph sets the renderer draws from, slot by slot."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn: list[str] = []
        for name, tight in (("single", False), ("up", False), ("down", False), ("real", True)):
            for ch in spec.ALPHABET:
                self.add(name, ch, np.ones((20, 20), np.float32), tight=tight)

    def pick(self, rng, name, ch):
        self.drawn.append(name)
        return super().pick(rng, name, ch)


def test_style8_gives_double_row_plates_the_single_row_glyph_variety():
    from plate_reader.training import data

    def share_real(kind: str, rows_variety: bool) -> float:
        bank, rng = _CountingBank(), np.random.default_rng(21)
        for _ in range(300):
            render.render_plate(bank, rng, kind, rows_variety=rows_variety)
        return bank.drawn.count("real") / len(bank.drawn)

    single, double, double8 = share_real("yellow", False), share_real("yellow_double", False), \
        share_real("yellow_double", True)
    # Styles 4-7: a third of the variety on double-row plates; style 8: as much as single-row plates get.
    assert double < 0.5 * single
    assert abs(double8 - single) < 0.25 * single
    # The flag leaves single-row plates alone, draw for draw.
    a = render.render_plate(_CountingBank(), np.random.default_rng(3), "blue").image
    b = render.render_plate(_CountingBank(), np.random.default_rng(3), "blue", rows_variety=True).image
    assert (a == b).all()
    assert 8 in data.augment.STYLES


def test_gate_crops_export_folder_is_read(tmp_path, tree):
    from plate_reader.training.data import gate_crops

    bank = glyphs.load(tree)
    rng = np.random.default_rng(1)
    (tmp_path / "crops").mkdir()
    rows = ["file,plate,label_source,camera_plate,color"]
    for i, (kind, color) in enumerate((("yellow_double", "yellow"), ("blue", "blue"))):
        p = render.render_plate(bank, rng, kind)
        cv2.imencode(".jpg", camera_crop(p.image, rng))[1].tofile(str(tmp_path / "crops" / f"{i}.jpg"))
        rows.append(f"crops/{i}.jpg,{p.text},corrected,{p.text},{color}")
    rows.append("crops/9.jpg,NOTAPLATE,camera,x,blue")
    (tmp_path / "labels.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
    arrays = gate_crops(tmp_path, copies=3, seed=0)
    assert len(arrays) == 6
    assert [spec.LABELS[i] for i in arrays.labels[::3]] == ["yellow_double", "blue"]


def test_missing_source_fails_clearly(cli, tmp_path, capsys):
    rc = cli.main(["build-and-train", "--sources", str(tmp_path), "--work", str(tmp_path / "w"), "--card", ""])
    assert rc == 2
    err = capsys.readouterr().err
    assert "yyq19990828/chinese_license_plate_generator" in err and "62e63cc5" in err


def test_service_never_imports_torch():
    code = ("import sys, gate_service, plate_reader, plate_reader.reader, plate_reader.layout, gate_service.app; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]; "
            "assert not bad, bad[:3]")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the shipped weights, loaded from the installed package with onnxruntime only ---------------------------

_READ_SCRIPT = r"""
import json, sys
sys.modules["torch"] = None  # any torch import in the read path fails loudly
from importlib import resources
from pathlib import Path
import cv2, numpy as np, onnxruntime as ort
from plate_reader import layout
from plate_reader.training.spec import greedy
w = resources.files("plate_reader.weights")
rec_spec = json.loads(w.joinpath("plate_rec.json").read_text(encoding="utf-8"))
kind_spec = json.loads(w.joinpath("plate_kind.json").read_text(encoding="utf-8"))
so = ort.SessionOptions(); so.intra_op_num_threads = 1
rec = ort.InferenceSession(w.joinpath("plate_rec.onnx").read_bytes(), so, providers=["CPUExecutionProvider"])
kind = ort.InferenceSession(w.joinpath("plate_kind.onnx").read_bytes(), so, providers=["CPUExecutionProvider"])
out = []
for path in sorted(Path(sys.argv[1]).glob("*.png")):
    crop = cv2.imread(str(path))
    k = kind_spec["labels"][int(kind.run(["logits"], {"image": layout.to_input(crop, kind_spec)[None]})[0].argmax())]
    view = layout.stitch_double_row(crop) if k == "yellow_double" else crop
    p = rec.run(["logits"], {"image": layout.to_input(view, rec_spec)[None]})[0]
    out.append({"file": path.name, "kind": k, "text": greedy(p, rec_spec["alphabet"])[0]})
print(json.dumps(out, ensure_ascii=False))
"""


def _read_shipped(folder: Path) -> dict[str, dict]:
    proc = subprocess.run([sys.executable, "-c", _READ_SCRIPT, str(folder)], capture_output=True, text=True,
                          check=True)
    return {r["file"]: r for r in json.loads(proc.stdout)}


def test_shipped_weights_read_held_out_ccpd_crops(tmp_path):
    read = ccpd_photo_reader()
    names = ccpd.load_split()["test"]
    truth = {}
    for i, name in enumerate(names):
        plate, quad = ccpd.parse_name(Path(name).name)
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), ccpd.rectify(read(name), quad))
        truth[f"{i:03d}.png"] = plate
    reads = _read_shipped(tmp_path)
    exact = sum(reads[f]["text"] == t for f, t in truth.items()) / len(truth)
    blue = sum(r["kind"] == "blue" for r in reads.values()) / len(reads)
    assert blue >= 0.95, blue
    # Raw best-path reads of all 121 held-out photos (the reader's template decoder only adds to this).
    assert exact >= SHIPPED_CCPD_MIN, (exact, [(t, reads[f]["text"]) for f, t in truth.items()
                                               if reads[f]["text"] != t])


def test_shipped_weights_read_double_row_and_yellow_green_plates(tmp_path):
    """Plates of the independent Noto-font renderer (never used in training), as padded rectified crops."""
    pytest.importorskip("PIL")
    import random

    from plate_reader import synth

    rng = random.Random(7)
    truth = {}
    for i in range(10):
        for kind in ("double_row_yellow", "new_energy_large"):
            text, color, double = synth.make_plate(kind, rng)
            img = synth.render_plate(text, color, double_row=double)
            h, w = img.shape[:2]
            crop = cv2.copyMakeBorder(img, int(h * 0.14), int(h * 0.14), int(w * 0.06), int(w * 0.06),
                                      cv2.BORDER_CONSTANT, value=(90, 90, 90))
            crop = cv2.resize(crop, (int(crop.shape[1] * 48 / crop.shape[0]), 48), interpolation=cv2.INTER_AREA)
            name = f"{'d' if double else 'g'}{i}.png"
            cv2.imwrite(str(tmp_path / name), crop)
            truth[name] = (text, "yellow_double" if double else "yellow_green")
    reads = _read_shipped(tmp_path)
    for prefix in ("d", "g"):
        got = [(reads[f]["text"], reads[f]["kind"]) for f in truth if f.startswith(prefix)]
        want = [truth[f] for f in truth if f.startswith(prefix)]
        right = sum(g == w for g, w in zip(got, want, strict=True))
        kinds_right = sum(g[1] == w[1] for g, w in zip(got, want, strict=True))
        assert kinds_right >= 9, list(zip(want, got, strict=True))
        assert right >= SHIPPED_SYNTH_MIN[prefix], list(zip(want, got, strict=True))


# Floors under what the shipped weights measured (MODEL_CARD.md), so a retrained model that reads worse fails.
# 2026.12.01-3 reads all 121 held-out CCPD crops (2026.12.01-2: 97.5%).
SHIPPED_CCPD_MIN = 0.98
# Raw best-path reads of 10 Noto-font plates each: 2026.12.01-3 double-row 8/10, yellow-green 10/10, kinds 10/10
# each (2026.12.01-2: 1/10 and 5/10). On 60 of each (seed 8): 45/60 and 49/60 (2026.12.01-2: 5/60, 29/60).
SHIPPED_SYNTH_MIN = {"d": 7, "g": 9}

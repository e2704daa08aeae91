"""Glyph masks (ink alpha in [0, 1]) and plate backgrounds, loaded from the extracted sources.

Sets: ``single`` (GA 36 140 mm-high glyphs), ``up``/``down`` (the double-row plate's two rows), ``green``
(new-energy font), plus alternative shapes for variety: ``alt`` (huangxinping's glyphs), ``real`` (character
images cut from real plates by wzh191920: real blur, real stroke widths) and ``ttf`` (platechar.ttf letters);
with ``fonts``, one set ``font:<name>`` per system font of SYSTEM_FONTS found on the machine (Debian packages,
named in the model card), so a model also learns plate characters in shapes that are not GA 36's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from plate_reader.training.sources import folder

YYQ = "yyq19990828/chinese_license_plate_generator"
HUANG = "huangxinping/chinese_license_plates"
SZAD = "szad670401/end-to-end-for-chinese-plate-recognition"
WZH = "wzh191920/License-Plate-Recognition"

# Fonts for shape variety (augmentation style 6): Debian's fonts-wqy-zenhei, fonts-wqy-microhei, fonts-arphic-ukai,
# fonts-arphic-uming (CJK and Latin) and fonts-dejavu-core, fonts-liberation2 (Latin only). Never a Noto font:
# plate_reader/synth.py and synth_hard.py render the evaluation plates in Noto Sans CJK.
SYSTEM_FONTS: dict[str, tuple[str, bool]] = {  # name: (path, has the CJK plate characters)
    "wqy-zenhei": ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", True),
    "wqy-microhei": ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", True),
    "arphic-ukai": ("/usr/share/fonts/truetype/arphic/ukai.ttc", True),
    "arphic-uming": ("/usr/share/fonts/truetype/arphic/uming.ttc", True),
    "dejavu-bold": ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", False),
    "dejavu-condensed-bold": ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf", False),
    "liberation-sans-bold": ("/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf", False),
    "liberation-narrow-bold": ("/usr/share/fonts/truetype/liberation2/LiberationSansNarrow-Bold.ttf", False),
}
# Augmentation style 7 draws in these too (more shapes of the same characters: Kai, Hei, Ming and Mincho CJK
# fonts and five Latin ones): Debian's fonts-lxgw-wenkai, fonts-cwtex-heib, fonts-babelstone-han, fonts-hanazono,
# fonts-lato, fonts-cantarell, fonts-crosextra-carlito, fonts-hack, fonts-jetbrains-mono. Not Noto, and none of
# HELD_OUT_FONTS.
MORE_FONTS: dict[str, tuple[str, bool]] = {
    "lxgw-wenkai-bold": ("/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf", True),
    "cwtex-heib": ("/usr/share/fonts/truetype/cwtex/cwheib.ttf", True),
    "babelstone-han": ("/usr/share/fonts/truetype/babelstone/BabelStoneHan.ttf", True),
    "hanazono-min-a": ("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf", True),
    "lato-black": ("/usr/share/fonts/truetype/lato/Lato-Black.ttf", False),
    "cantarell-extrabold": ("/usr/share/fonts/opentype/cantarell/Cantarell-ExtraBold.otf", False),
    "carlito-bold": ("/usr/share/fonts/truetype/crosextra/Carlito-Bold.ttf", False),
    "hack-bold": ("/usr/share/fonts/truetype/hack/Hack-Bold.ttf", False),
    "jetbrains-mono-extrabold": ("/usr/share/fonts/truetype/jetbrains-mono/JetBrainsMono-ExtraBold.ttf", False),
}
MORE_PACKAGES = ("fonts-lxgw-wenkai fonts-cwtex-heib fonts-babelstone-han fonts-hanazono fonts-lato fonts-cantarell "
                 "fonts-crosextra-carlito fonts-hack fonts-jetbrains-mono")
# Fonts no training run draws with, for the held-out set that measures transfer to unseen character shapes
# (Debian's fonts-droid-fallback, fonts-arphic-gbsn00lp, fonts-arphic-gkai00mp, fonts-freefont-ttf). Not Noto.
HELD_OUT_FONTS: dict[str, tuple[str, bool]] = {
    "droid-fallback": ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", True),
    "arphic-gbsn00lp": ("/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf", True),
    "arphic-gkai00mp": ("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf", True),
    "freefont-sans-bold": ("/usr/share/fonts/truetype/freefont/FreeSansBold.ttf", False),
}
HELD_OUT_PACKAGES = "fonts-droid-fallback fonts-arphic-gbsn00lp fonts-arphic-gkai00mp fonts-freefont-ttf"
TRAINING_PACKAGES = ("fonts-wqy-zenhei fonts-wqy-microhei fonts-arphic-ukai fonts-arphic-uming fonts-dejavu-core "
                     "fonts-liberation2")
FONT_LATIN = "ABCDEFGHJKLMNOPQRSTUVWXYZ0123456789"
# The licence of each package's font files (its Debian copyright file, the ``Files: *`` stanza; the packaging's
# own licence aside). The fonts are drawn at training time and never committed or shipped: the card lists them.
FONT_LICENCES: dict[str, str] = {
    "fonts-wqy-zenhei": "GPL-2 with font embedding exception; M+ FONTS License (its Latin glyphs)",
    "fonts-wqy-microhei": "Apache-2.0 or GPL-3+ with font exception",
    "fonts-arphic-ukai": "Arphic Public License",
    "fonts-arphic-uming": "Arphic Public License",
    "fonts-dejavu-core": "Bitstream Vera Fonts licence (DejaVu changes public domain)",
    "fonts-liberation2": "SIL OFL 1.1",
    "fonts-lxgw-wenkai": "SIL OFL 1.1",
    "fonts-cwtex-heib": "GPL-2+",
    "fonts-babelstone-han": "Arphic Public License and CC BY-SA 3.0 or 4.0",
    "fonts-hanazono": "Hanazono Font License or SIL OFL 1.1",
    "fonts-lato": "SIL OFL 1.1",
    "fonts-cantarell": "SIL OFL 1.1",
    "fonts-crosextra-carlito": "SIL OFL 1.1",
    "fonts-hack": "MIT (Expat) and Bitstream Vera Fonts licence",
    "fonts-jetbrains-mono": "Apache-2.0",
    "fonts-droid-fallback": "Apache-2.0",
    "fonts-arphic-gbsn00lp": "Arphic Public License",
    "fonts-arphic-gkai00mp": "Arphic Public License",
    "fonts-freefont-ttf": "GPL-3+ with font exception",
}
assert not set(HELD_OUT_FONTS) & (set(SYSTEM_FONTS) | set(MORE_FONTS)), "a held-out font is trained on"
assert set(FONT_LICENCES) == set(f"{TRAINING_PACKAGES} {MORE_PACKAGES} {HELD_OUT_PACKAGES}".split()), \
    "every font package needs its licence"

# wzh191920's folder names are pinyin; the ambiguous pairs were checked by eye against the images.
WZH_PROVINCES = {
    "zh_cuan": "川", "zh_e": "鄂", "zh_gan": "赣", "zh_gan1": "甘", "zh_gui": "贵", "zh_gui1": "桂", "zh_hei": "黑",
    "zh_hu": "沪", "zh_ji": "冀", "zh_jin": "津", "zh_jing": "京", "zh_jl": "吉", "zh_liao": "辽", "zh_lu": "鲁",
    "zh_meng": "蒙", "zh_min": "闽", "zh_ning": "宁", "zh_qing": "青", "zh_qiong": "琼", "zh_shan": "陕",
    "zh_su": "苏", "zh_sx": "晋", "zh_wan": "皖", "zh_xiang": "湘", "zh_xin": "新", "zh_yu": "豫", "zh_yu1": "渝",
    "zh_yue": "粤", "zh_yun": "云", "zh_zang": "藏", "zh_zhe": "浙",
}


def _read(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    # cv2.imread cannot open non-ASCII paths on every platform; decoding the bytes always works.
    data = np.fromfile(str(path), dtype=np.uint8)
    return cv2.imdecode(data, flags) if data.size else None


def ink_dark_on_light(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3 and img.shape[2] == 4:
        return img[:, :, 3].astype(np.float32) / 255.0
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return np.clip((230.0 - gray.astype(np.float32)) / 180.0, 0.0, 1.0)


def trim(mask: np.ndarray, thr: float = 0.3) -> np.ndarray:
    ys, xs = np.nonzero(mask > thr)
    if len(ys) == 0:
        return mask
    return mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


@dataclass
class GlyphBank:
    sets: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    # True for sets whose masks are tight ink boxes (placed keeping aspect), False for full-cell images.
    tight: dict[str, bool] = field(default_factory=dict)
    backgrounds: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, name: str, ch: str, mask: np.ndarray, tight: bool = False) -> None:
        self.sets.setdefault(name, {}).setdefault(ch, []).append(mask.astype(np.float32))
        self.tight.setdefault(name, tight)

    def has(self, name: str, ch: str) -> bool:
        return ch in self.sets.get(name, {})

    def pick(self, rng: np.random.Generator, name: str, ch: str) -> tuple[np.ndarray, bool]:
        masks = self.sets[name][ch]
        return masks[int(rng.integers(len(masks)))], self.tight[name]


_YYQ_NAME = re.compile(r"^(140|220_up|220_down|220|green)_(.)\.jpg$")
_SET_OF = {"140": "single", "220_up": "up", "220_down": "down", "220": "down", "green": "green"}


def load(extracted: Path, max_real_per_char: int = 60, seed: int = 0, fonts: bool = False,
         font_table: dict[str, tuple[str, bool]] | None = None) -> GlyphBank:
    """The bank; ``fonts`` adds the ``font:<name>`` sets (style 6) of ``font_table`` (SYSTEM_FONTS; HELD_OUT_FONTS
    for the unseen-font evaluation set) and fails if none of them is found."""
    bank = GlyphBank()
    yyq = folder(extracted, YYQ)
    for path in sorted((yyq / "font_model").glob("*.jpg")):
        m = _YYQ_NAME.match(path.name)
        img = _read(path, cv2.IMREAD_GRAYSCALE)
        if m is None or img is None:
            continue
        prefix, ch = m.group(1), m.group(2)
        name = _SET_OF[prefix]
        # 220_<province> glyphs are the double-row plate's top-row provinces; 220_<digit> its bottom digits.
        if prefix == "220" and not ch.isdigit() and ch != "挂":
            name = "up"
        bank.add(name, ch, ink_dark_on_light(img))
    for path in sorted((yyq / "plate_model").glob("*.PNG")):
        img = _read(path, cv2.IMREAD_COLOR)
        if img is not None:
            bank.backgrounds[path.stem] = img

    huang = folder(extracted, HUANG) / "generator" / "images"
    for path in sorted(huang.glob("*/*.png")):
        ch = path.stem
        if len(ch) != 1 or ch in ("k", "翼"):  # two mislabelled files in that set
            continue
        img = _read(path)
        if img is not None:
            bank.add("alt", ch, ink_dark_on_light(img))

    rng = np.random.default_rng(seed)
    wzh = folder(extracted, WZH) / "train"
    for sub, names in (("chars2/chars2", None), ("charsChinese/charsChinese", WZH_PROVINCES)):
        base = wzh / sub
        if not base.is_dir():
            base = wzh / sub.split("/")[0]
        for d in sorted(p for p in base.glob("*") if p.is_dir()):
            ch = names.get(d.name) if names else d.name
            if not ch or len(ch) != 1:
                continue
            files = sorted(d.glob("*.jpg"))
            if len(files) > max_real_per_char:
                files = [files[i] for i in sorted(rng.choice(len(files), max_real_per_char, replace=False))]
            for f in files:
                img = _read(f, cv2.IMREAD_GRAYSCALE)
                if img is None:
                    continue
                mask = trim(img.astype(np.float32) / 255.0)
                if mask.shape[0] >= 8:
                    bank.add("real", ch, mask, tight=True)

    ttf = folder(extracted, SZAD) / "font" / "platechar.ttf"
    if ttf.exists():
        _add_ttf(bank, ttf)
    if fonts:
        _add_system_fonts(bank, SYSTEM_FONTS if font_table is None else font_table)
    return bank


def font_sets(bank: GlyphBank, table: dict[str, tuple[str, bool]] | None = None) -> list[str]:
    """The bank's font sets (``font:<name>``), sorted; with ``table``, only those of its fonts."""
    return sorted(name for name in bank.sets if name.startswith("font:") and (table is None or name[5:] in table))


def _add_system_fonts(bank: GlyphBank, table: dict[str, tuple[str, bool]]) -> None:
    from PIL import ImageFont

    from plate_reader import plates

    cjk = plates.PROVINCES + plates.SUFFIXES
    for name, (path, has_cjk) in table.items():
        assert "noto" not in path.lower(), "Noto is the evaluation renderers' font"
        if not Path(path).exists():
            continue
        font = ImageFont.truetype(path, 120)
        # Plate characters are bold: each font also drawn with a stroke (its bold weight, roughly).
        for ch in FONT_LATIN + (cjk if has_cjk else ""):
            for stroke in (0, 4):
                _add_drawn(bank, f"font:{name}", font, ch, (200, 200), (30, 20), stroke)
    if not font_sets(bank):
        packages = HELD_OUT_PACKAGES if table is HELD_OUT_FONTS else TRAINING_PACKAGES + " " + MORE_PACKAGES
        raise FileNotFoundError(f"none of the fonts {', '.join(table)} is installed (apt-get install {packages})")


def _add_drawn(bank: GlyphBank, name: str, font, ch: str, canvas: tuple[int, int], at: tuple[int, int],
               stroke: int = 0) -> None:
    """``ch`` drawn in ``font`` on a black canvas, trimmed to its ink, added to set ``name`` (tight) if legible."""
    from PIL import Image, ImageDraw

    im = Image.new("L", canvas, 0)
    ImageDraw.Draw(im).text(at, ch, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    mask = trim(np.asarray(im, dtype=np.float32) / 255.0)
    if mask.shape[0] > 20:
        bank.add(name, ch, mask, tight=True)


def _add_ttf(bank: GlyphBank, ttf: Path) -> None:
    from PIL import ImageFont

    font = ImageFont.truetype(str(ttf), 120)
    for ch in FONT_LATIN:
        _add_drawn(bank, "ttf", font, ch, (160, 160), (20, 10))

"""Chinese licence-plate grammar (GA 36-2018): normalise, validate, classify, repair OCR confusions.

Pure Python, no OpenCV/onnx imports, so other packages (rules, ledger) can use it cheaply.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PROVINCES",
    "LETTERS",
    "AUTHORITY",
    "DIGITS",
    "ALNUM",
    "SUFFIXES",
    "POWERTRAIN_SMALL",
    "PURE_ELECTRIC_SMALL",
    "KINDS",
    "COLORS",
    "InvalidPlate",
    "Plate",
    "Template",
    "TEMPLATES",
    "normalize",
    "parse",
    "is_valid",
    "repair",
    "expected_colors",
    "kind_for_color",
]

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# I and O are never issued: they would be confused with 1 and 0.
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
# The issuing-authority letter may also be O: GA 36 reserves it for police/government fleets (粤O, 京O), and
# such plates are on the road (two in the EasyPR set). Serial characters never use I or O.
AUTHORITY = LETTERS + "O"
DIGITS = "0123456789"
ALNUM = LETTERS + DIGITS
SUFFIXES = "学挂警港澳领使"
POWERTRAIN_SMALL = "DABCEFGHJK"
PURE_ELECTRIC_SMALL = "DABCE"
POWERTRAIN_LARGE = "DF"

COLORS = ("blue", "yellow", "green", "yellow-green", "white", "black")

KINDS = (
    "ordinary",
    "new_energy_small",
    "new_energy_large",
    "trailer",
    "learner",
    "police",
    "hongkong",
    "macau",
    "embassy",
    "consulate",
)

_EXPECTED_COLORS: dict[str, tuple[str, ...]] = {
    # Ordinary 7-character plates: blue for small vehicles, yellow for large ones (front of trucks, buses).
    "ordinary": ("blue", "yellow"),
    "new_energy_small": ("green",),
    "new_energy_large": ("yellow-green",),
    "trailer": ("yellow",),
    "learner": ("yellow",),
    "police": ("white",),
    "hongkong": ("black",),
    "macau": ("black",),
    "embassy": ("black",),
    "consulate": ("black",),
}

_SUFFIX_KIND = {"挂": "trailer", "学": "learner", "警": "police", "港": "hongkong", "澳": "macau", "领": "consulate"}

# Separators seen on plates, in camera feeds and typed by guards.
_SEPARATORS = re.compile(r"[\s·•‧∙・.\-_—–·]+")


class InvalidPlate(ValueError):
    """A text that is not a plate under GA 36-2018; the message says what is wrong (中文 + English)."""


@dataclass(frozen=True)
class Plate:
    text: str
    province: str
    authority: str
    serial: str
    kind: str
    new_energy: bool
    pure_electric: bool | None
    expected_colors: tuple[str, ...]

    def __str__(self) -> str:
        return self.text

    @property
    def display(self) -> str:
        """The plate as printed, with the middle dot after the authority letter (晋L·D12345)."""
        if self.kind == "embassy":
            return self.text
        return f"{self.province}{self.authority}·{self.serial}"


@dataclass(frozen=True)
class Template:
    """One plate layout as a sequence of allowed character sets, one per position.

    The recogniser uses these to pick, at each position, the most probable character that the slot may hold.
    """

    kind: str
    slots: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.slots)


def _t(kind: str, *slots: str) -> Template:
    return Template(kind, tuple(slots))


TEMPLATES: tuple[Template, ...] = (
    _t("ordinary", PROVINCES, AUTHORITY, ALNUM, ALNUM, ALNUM, ALNUM, ALNUM),
    _t("new_energy_small", PROVINCES, AUTHORITY, POWERTRAIN_SMALL, ALNUM, DIGITS, DIGITS, DIGITS, DIGITS),
    _t("new_energy_large", PROVINCES, AUTHORITY, DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, POWERTRAIN_LARGE),
    _t("trailer", PROVINCES, AUTHORITY, ALNUM, ALNUM, ALNUM, ALNUM, "挂"),
    _t("learner", PROVINCES, AUTHORITY, ALNUM, ALNUM, ALNUM, ALNUM, "学"),
    _t("police", PROVINCES, AUTHORITY, ALNUM, ALNUM, ALNUM, ALNUM, "警"),
    # Hong Kong / Macau cross-border vehicles are registered in Guangdong under 粤Z.
    _t("hongkong", "粤", "Z", ALNUM, ALNUM, ALNUM, ALNUM, "港"),
    _t("macau", "粤", "Z", ALNUM, ALNUM, ALNUM, ALNUM, "澳"),
    _t("consulate", PROVINCES, AUTHORITY, ALNUM, ALNUM, ALNUM, ALNUM, "领"),
    # Embassy plates: 使 + 3-digit mission code + 3-digit serial (old style), or the code first and 使 last.
    _t("embassy", "使", DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, DIGITS),
    _t("embassy", DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, DIGITS, "使"),
)


def normalize(text: str) -> str:
    """Strip separators, fold full-width forms to ASCII, uppercase. No validation."""
    if not isinstance(text, str):
        raise TypeError(f"plate text must be str, not {type(text).__name__}")
    # NFKC folds full-width Ａ１ to A1 and leaves CJK ideographs alone.
    folded = unicodedata.normalize("NFKC", text)
    return _SEPARATORS.sub("", folded).upper()


def _fits(text: str, template: Template) -> bool:
    return len(text) == len(template) and all(c in s for c, s in zip(text, template.slots, strict=True))


def _classify(text: str) -> str | None:
    for template in TEMPLATES:
        if _fits(text, template):
            return template.kind
    return None


def _explain(text: str) -> str:
    """Say the first thing that is wrong, so a guard typing a plate knows what to fix."""
    if not text:
        return "车牌为空 / plate is empty"
    if "使" in text:
        return f"使馆车牌应为 使+6位数字 / embassy plate must be 使 plus 6 digits: {text!r}"
    if text[0] not in PROVINCES:
        return f"首字符不是省份简称 / first character {text[0]!r} is not one of the 31 province abbreviations"
    if len(text) < 2 or text[1] not in AUTHORITY:
        got = text[1] if len(text) > 1 else "nothing"
        return f"第二位应为发牌机关字母（无 I） / second character must be a letter A-Z other than I, got {got!r}"
    if len(text) not in (7, 8):
        return f"车牌应为7位或8位（新能源） / plate must have 7 characters (8 for new energy), got {len(text)}"
    bad = [c for c in text[2:] if c not in ALNUM and c not in SUFFIXES]
    if bad:
        return f"含非法字符 / illegal character {bad[0]!r} (letters I and O are never used)"
    if len(text) == 8:
        return (
            "新能源车牌：小型第三位为 D/A/B/C/E/F/G/H/J/K 且后四位为数字，大型为5位数字加 D/F / new-energy plate: small "
            "has the power-train letter D/A/B/C/E/F/G/H/J/K third and four digits last; large has five digits then D or F"
        )
    suffix = text[-1]
    if suffix in SUFFIXES and suffix in "港澳":
        return f"港澳车牌应为 粤Z+4位+{suffix} / Hong Kong/Macau plates are 粤Z + 4 characters + {suffix}"
    if any(c in SUFFIXES for c in text[2:-1]):
        return "汉字后缀只能在最后一位 / a suffix character may only be last"
    return f"不符合 GA 36-2018 车牌格式 / not a GA 36-2018 plate: {text!r}"


def parse(text: str) -> Plate:
    """Normalise and validate; raises InvalidPlate with a reason."""
    norm = normalize(text)
    kind = _classify(norm)
    if kind is None:
        raise InvalidPlate(_explain(norm))
    if kind == "embassy":
        province, authority, serial = "", "", norm
    else:
        province, authority, serial = norm[0], norm[1], norm[2:]
    if kind == "new_energy_small":
        new_energy, pure = True, norm[2] in PURE_ELECTRIC_SMALL
    elif kind == "new_energy_large":
        new_energy, pure = True, norm[-1] == "D"
    else:
        new_energy, pure = False, None
    return Plate(
        text=norm,
        province=province,
        authority=authority,
        serial=serial,
        kind=kind,
        new_energy=new_energy,
        pure_electric=pure,
        expected_colors=_EXPECTED_COLORS[kind],
    )


def is_valid(text: str) -> bool:
    try:
        parse(text)
    except (InvalidPlate, TypeError):
        return False
    return True


def expected_colors(kind: str) -> tuple[str, ...]:
    return _EXPECTED_COLORS[kind]


def kind_for_color(color: str) -> tuple[str, ...]:
    """Plate kinds that may carry this colour (the reader uses it to prefer 7 vs 8 characters)."""
    return tuple(k for k in KINDS if color in _EXPECTED_COLORS[k])


# OCR confusions that position resolves: a slot that can only hold a digit (or a letter) maps the look-alike.
TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "T": "1", "J": "1", "Z": "2",
            "S": "5", "B": "8", "G": "6", "A": "4"}
TO_LETTER = {"0": "D", "O": "D", "Q": "D", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "7": "T"}
# I and O are never issued, so in any alphanumeric slot they are 1 and 0.
TO_ALNUM = {"I": "1", "O": "0", "Q": "0"}


def _coerce(ch: str, allowed: str) -> tuple[str, int] | None:
    """Return (character, cost) that fits the slot, or None. Cost counts substitutions."""
    if ch in allowed:
        return ch, 0
    for table in (TO_ALNUM, TO_DIGIT, TO_LETTER):
        alt = table.get(ch)
        if alt is not None and alt in allowed:
            return alt, 1
    return None


def repair(text: str, kinds: Iterable[str] | None = None, max_fixes: int = 2) -> str | None:
    """Resolve letter/digit confusions by position; return a valid plate or None.

    Tries each template of the right length and keeps the one needing the fewest substitutions (at most
    ``max_fixes``, so a string of noise is not forced into a plate). ``kinds`` limits the templates, e.g. to those
    a green crop may carry.
    """
    norm = normalize(text)
    wanted = set(kinds) if kinds is not None else None
    best: tuple[int, str] | None = None
    for template in TEMPLATES:
        if wanted is not None and template.kind not in wanted:
            continue
        if len(norm) != len(template):
            continue
        out, cost = [], 0
        for ch, allowed in zip(norm, template.slots, strict=True):
            fixed = _coerce(ch, allowed)
            if fixed is None:
                break
            out.append(fixed[0])
            cost += fixed[1]
        else:
            if cost <= max_fixes and (best is None or cost < best[0]):
                best = (cost, "".join(out))
    return best[1] if best else None

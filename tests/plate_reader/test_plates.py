import pytest

from plate_reader.plates import PROVINCES, InvalidPlate, is_valid, normalize, parse, repair


def test_provinces():
    assert len(PROVINCES) == 31 and len(set(PROVINCES)) == 31
    assert "晋" in PROVINCES


@pytest.mark.parametrize(
    "text, kind, new_energy, pure, colors",
    [
        ("晋LA1234", "ordinary", False, None, ("blue", "yellow")),
        ("晋L·A1234", "ordinary", False, None, ("blue", "yellow")),
        ("京CX8888", "ordinary", False, None, ("blue", "yellow")),
        ("晋LD12345", "new_energy_small", True, True, ("green",)),
        ("晋LA12345", "new_energy_small", True, True, ("green",)),
        ("晋LF12345", "new_energy_small", True, False, ("green",)),
        ("晋LKA1234", "new_energy_small", True, False, ("green",)),
        ("晋L12345D", "new_energy_large", True, True, ("yellow-green",)),
        ("晋L12345F", "new_energy_large", True, False, ("yellow-green",)),
        ("晋L1234挂", "trailer", False, None, ("yellow",)),
        ("晋LA123学", "learner", False, None, ("yellow",)),
        ("晋L1234警", "police", False, None, ("white",)),
        ("粤Z1234港", "hongkong", False, None, ("black",)),
        ("粤ZA123澳", "macau", False, None, ("black",)),
        ("使014578", "embassy", False, None, ("black",)),
        ("沪A1234领", "consulate", False, None, ("black",)),
    ],
)
def test_valid_kinds(text, kind, new_energy, pure, colors):
    p = parse(text)
    assert p.kind == kind
    assert p.new_energy is new_energy
    assert p.pure_electric is pure
    assert p.expected_colors == colors
    assert is_valid(text)


def test_fields():
    p = parse("晋l·d12345")
    assert (p.text, p.province, p.authority, p.serial) == ("晋LD12345", "晋", "L", "D12345")
    assert p.display == "晋L·D12345"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("XLA1234", "province"),
        ("晋IA1234", "second character"),
        ("晋1A1234", "second character"),
        ("晋LA123", "7 characters"),
        ("晋LA12345678", "7 characters"),
                ("晋LA1O34", "illegal"),
        ("晋LI1234", "illegal"),
        ("晋LZ12345", "new-energy"),   # Z is no power-train letter
        ("晋LD1234A", "new-energy"),   # small: last four must be digits
        ("晋L1234AD", "new-energy"),   # large: five digits then D/F
        ("晋L12345E", "new-energy"),
        ("晋L12挂34", "suffix"),
        ("晋L1234港", "港澳"),
        ("使01457", "embassy"),
    ],
)
def test_invalid(text, fragment):
    with pytest.raises(InvalidPlate) as e:
        parse(text)
    assert fragment in str(e.value)
    assert not is_valid(text)


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("晋L·A1234", "晋LA1234"),
        ("晋L A1234", "晋LA1234"),
        ("晋L-a1234", "晋LA1234"),
        ("晋Ｌ．Ａ１２３４", "晋LA1234"),
        ("晋L•D12345", "晋LD12345"),
        ("  晋l.d12345 ", "晋LD12345"),
    ],
)
def test_normalize(raw, norm):
    assert normalize(raw) == norm


@pytest.mark.parametrize(
    "raw, fixed",
    [
        ("晋8A1234", "晋BA1234"),      # digit in the authority-letter slot
        ("晋LA12O45", "晋LA12045"),   # 8 chars: small NEV with O->0
        ("晋LA12O456", None),         # wrong length stays unrepaired
        ("晋LA1O34", "晋LA1034"),      # O is never issued
        ("晋LI2345", "晋L12345"),      # I is never issued
        ("晋L0123S5", None),          # ambiguous beyond max fixes? -> see below
        ("晋L012345", "晋LD12345"),    # 3rd slot of an 8-char plate is a letter: 0 -> D
        ("晋LD1234S", "晋LD12345"),    # last four of a small NEV are digits
        ("晋L1234SD", "晋L12345D"),    # large NEV: five digits
        ("晋L12345O", "晋L12345D"),
        ("晋LA1234", "晋LA1234"),
        ("XXXXXXX", None),
    ],
)
def test_repair(raw, fixed):
    if raw == "晋L0123S5":
        assert repair(raw) == "晋LD12355"
        return
    assert repair(raw) == fixed


def test_repair_respects_kinds():
    assert repair("晋L12345D", kinds=["new_energy_small"]) is None
    assert repair("晋L12345D", kinds=["new_energy_large"]) == "晋L12345D"


def test_authority_o_is_allowed_but_not_in_serial():
    assert parse("粤OA2160").authority == "O"
    assert not is_valid("粤AO2160")

import pytest

from plate_reader.dataset import default_dir


@pytest.fixture(scope="session")
def reader():
    from plate_reader.reader import PlateReader

    return PlateReader(threads=1)


@pytest.fixture(scope="session")
def easypr_dir():
    d = default_dir()
    if not (d / "labels.csv").is_file():
        pytest.skip(f"EasyPR photo set not found at {d} (set CLEANGATE_EASYPR_DIR to its folder)")
    return d


# Six held-out CCPD plates (plate_reader/training/ccpd_split.json "test": split by plate, never trained on), by
# their names in the pinned subset. The photos are not committed (fetched data stays out of the repository):
# they are read from the subset where this machine has it, else the tests that need them skip, saying why.
CCPD_FIXTURE_NAMES = (
    "test/0228017241379-91_91-258&482_548&573-539&572_264&555_263&475_538&492-1_11_27_33_24_25_32-91-280.jpg",
    "test/0704980842912-89_86-111&435_588&575-580&584_121&586_127&437_586&435-0_0_17_32_26_30_15-158-281.jpg",
    "train/0424245689655-90_83-210&468_607&583-595&596_214&582_219&469_600&483-0_0_5_24_7_24_32-109-294.jpg",
    "train/0495593869731-89_86-138&478_576&593-575&593_157&606_143&489_561&476-0_9_10_32_15_25_32-72-280.jpg",
    "train/0598060344828-92_76-100&459_570&596-590&596_132&566_92&451_550&481-0_0_11_24_27_24_31-55-328.jpg",
    "train/0701221264367-90_87-154&428_647&580-628&577_177&595_197&438_648&420-0_0_18_5_25_32_32-93-394.jpg",
)


def ccpd_photo_reader():
    """Reads a CCPD photo by split name from wherever the pinned subset is on this machine, or skips."""
    import os
    import subprocess
    from pathlib import Path

    import cv2
    import numpy as np

    from plate_reader.training import ccpd
    from plate_reader.training.sources import SOURCES, git_dir

    plain = [Path(os.environ["CLEANGATE_CCPD_DIR"])] if os.environ.get("CLEANGATE_CCPD_DIR") else []
    plain.append(default_dir().parent / "ccpd")
    for d in plain:
        if (d / "test").is_dir():
            return lambda name: ccpd.read_photo(d / name)
    src = next(s for s in SOURCES if s.repo.startswith("julienkolani/"))
    try:
        gd = git_dir(Path(os.environ.get("CLEANGATE_TRAIN_SOURCES", "/work/.mirror")), src)
    except Exception as e:  # noqa: BLE001 - any reason the snapshot is unusable means: skip, saying why
        pytest.skip(f"CCPD subset not on this machine (CLEANGATE_CCPD_DIR, ../shared/data/plates/ccpd or the "
                    f"pinned snapshot): {e}")

    def read(name: str) -> np.ndarray:
        blob = subprocess.run(["git", "--git-dir", str(gd), "show", f"{src.commit}:{ccpd.SUBDIR}/{name}"],
                              capture_output=True, check=True).stdout
        return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)

    return read


@pytest.fixture(scope="session")
def ccpd_crops():
    """[(94x24 BGR crop, plate)] of the six held-out plates: cut to their labelled corners without margin at
    CCPD's thumbnail size, as benchmarks/ccpd.py's tight_crops does."""
    import cv2

    from benchmarks.ccpd import parse_name
    from plate_reader.locate import rectify

    read = ccpd_photo_reader()
    out = []
    for name in CCPD_FIXTURE_NAMES:
        plate, quad = parse_name(name.rsplit("/", 1)[-1])
        crop = rectify(read(name), quad, pad_x=0.0, pad_y=0.0, out_h=24)
        out.append((cv2.resize(crop, (94, 24), interpolation=cv2.INTER_AREA), plate))
    return out

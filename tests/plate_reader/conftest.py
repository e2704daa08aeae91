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

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def kb():
    from data_gen import load_knowledge

    return load_knowledge()


@pytest.fixture(scope="session")
def review_text():
    path = SHARED / "reference" / "diffuse-pulmonary-calcifications-review.md"
    if not path.exists():
        pytest.skip("../shared/reference is not beside the project")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def literature_text():
    path = SHARED / "reference" / "literature-numbers.md"
    if not path.exists():
        pytest.skip("../shared/reference is not beside the project")
    return path.read_text(encoding="utf-8")

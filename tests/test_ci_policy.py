"""The suite's CI policy (tests/conftest.py): with CI=true a skipped test fails the run; without
it a skip stays a skip. Run on a two-test file by pytest itself (pytester)."""
import pytest

from conftest import REPO, running_in_ci

pytest_plugins = ("pytester",)

EXAMPLE = """
import pytest

def test_needs_data():
    pytest.skip("no face data at ../shared/data/utkface")

@pytest.mark.skipif(True, reason="evaluation judges not installed")
def test_needs_judges():
    pass

@pytest.mark.xfail(reason="a known defect", strict=False)
def test_known_defect():
    assert False

def test_plain():
    assert True
"""


@pytest.fixture
def suite(pytester):
    # the project's own conftest, as it is: its hook is what is under test
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_example=EXAMPLE)
    return pytester


def test_ci_is_read_from_the_environment(monkeypatch):
    for value, expected in (("true", True), ("TRUE", True), ("1", True), ("yes", True),
                            ("", False), ("false", False), ("0", False)):
        monkeypatch.setenv("CI", value)
        assert running_in_ci() is expected, value
    monkeypatch.delenv("CI")
    assert running_in_ci() is False


def test_a_skip_fails_under_ci(suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-p", "no:cacheprovider", "-rA")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("xfailed") == 1, outcomes
    assert outcomes.get("skipped") is None
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 2, outcomes
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*CI=true allows no skip: no face data at ../shared/data/utkface*"])
    result.stdout.fnmatch_lines(["*CI=true allows no skip: evaluation judges not installed*"])


def test_a_skip_stays_a_skip_outside_ci(suite, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest("-p", "no:cacheprovider")
    assert result.parseoutcomes() == {"passed": 1, "skipped": 2, "xfailed": 1}
    assert result.ret == 0

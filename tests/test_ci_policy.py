"""The suite's CI policy (tests/conftest.py): with CI=true a skipped test fails the run; without
it a skip stays a skip. Run on a two-test file by pytest itself (pytester)."""
import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO, running_in_ci

pytest_plugins = ("pytester",)

EXAMPLE = """
import pytest

def test_needs_data():
    pytest.skip("no face data at ../shared/data/utkface")

@pytest.mark.skipif(True, reason="evaluation judges not installed")
def test_needs_judges():
    raise AssertionError("a skipped test ran")

@pytest.mark.xfail(reason="a known defect", strict=False)
def test_known_defect():
    assert False

def test_plain():
    assert True
"""

OPTIONAL = """
import pytest

gradio = pytest.importorskip("a_module_that_is_not_installed")

def test_uses_it():
    raise AssertionError("a test of a module that failed to import ran")
"""


@pytest.fixture
def suite(pytester):
    # the project's own conftest, as it is: its hook is what is under test
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_example=EXAMPLE, test_optional_module=OPTIONAL)
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
    # the two skipped tests fail (and the module skipped while collected is reported)
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 2, outcomes
    assert outcomes.get("skipped") == 1 and result.ret == pytest.ExitCode.TESTS_FAILED
    for reason in ("no face data at ../shared/data/utkface", "evaluation judges not installed"):
        result.stdout.fnmatch_lines([f"*CI=true allows no skip: {reason}*"])


@pytest.mark.parametrize("workers", [None, "2"])
def test_a_module_skipped_while_collected_fails_the_run_under_ci(suite, monkeypatch, workers):
    """Alone (nothing else fails), in one process and with two xdist workers as the README's
    command runs (the skip then reaches the controller from a worker)."""
    monkeypatch.setenv("CI", "true")
    args = ["-p", "no:cacheprovider", "test_optional_module.py"]
    if workers is None:
        result = suite.runpytest(*args)
    else:  # a child process: it finds the project without relying on an installed copy
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
        result = suite.runpytest_subprocess(*args, "-n", workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED test_optional_module.py: could not import "
                                 "'a_module_that_is_not_installed'* (skipped, and CI=true allows "
                                 "no skip)"])


CRASHING = """
import os, signal, subprocess, sys

def test_worker_dies_with_a_child_running():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open("child.pid", "w") as f:
        f.write(str(child.pid))
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would: no teardown runs
"""


def _alive(pid: int) -> bool:
    try:
        status = open(f"/proc/{pid}/status").read()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie waits only to be reaped by its new parent


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_children_of_a_dead_worker_are_killed(pytester, monkeypatch):
    """A worker killed mid-test leaves its test's child running; the controller kills it, and
    only it: a process of another pytest session under the same worker id (this suite's own
    ``gw0``, when this test runs on ``gw1``) is left alone."""
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_crashing=CRASHING)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                 env=dict(os.environ, PYTEST_XDIST_WORKER="gw0"))
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1",
                                               "--max-worker-restart=0")
        pid = int((pytester.path / "child.pid").read_text())
        try:
            result.stdout.fnmatch_lines(
                [f"*killed process {pid}, left running by dead worker gw0*"])
            assert not _alive(pid)
            assert _alive(bystander.pid), "the inner session killed another session's gw0 child"
        finally:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("workers", [None, "1"])
def test_slow_modules_run_first(pytester, monkeypatch, workers):
    """In collection order, and through xdist's file scheduler (which would otherwise put the
    module with the most tests first). In a child process: a worker of this suite has imported
    the real test_scale and test_precision modules, whose names the sample files reuse."""
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    one = "def test_one():\n    assert 1 + 1 == 2\n"
    three = one + one.replace("one", "two") + one.replace("one", "three")
    pytester.makepyfile(test_alpha=three, test_precision=one, test_zeta=one, test_scale=one)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    args = ["-p", "no:cacheprovider", "-v"] + ([] if workers is None else
                                               ["-n", workers, "--dist", "loadfile"])
    result = pytester.runpytest_subprocess(*args)
    ran = [line.split("::")[0].split()[-1] for line in result.stdout.lines if " PASSED" in line]
    modules = list(dict.fromkeys(ran))
    assert modules == ["test_scale.py", "test_precision.py", "test_alpha.py", "test_zeta.py"], \
        result.stdout.lines

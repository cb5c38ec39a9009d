"""Shared fixtures and helpers: a tiny dataset in the release's list layout, the ../shared data
location, child processes logged to files, checkpoint comparison, and the CI skip policy."""
import contextlib
import ctypes
import ctypes.util
import gc
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from face_aging.data import lists  # noqa: E402


def group_colour(group: int) -> int:
    """Grey level of the synthetic faces of a group (lets tests tell groups apart by pixels)."""
    return 30 + 40 * group


def make_list_dataset(root: Path, per_group: int = 3, age_groups: int = 5, size: int = 40,
                      pairs=((1, 0), (4, 2), (3, 1), (0, 3), (2, 4))) -> Path:
    """Writes a tiny dataset: per group ``per_group`` JPEGs of flat grey ``group_colour(k)``
    plus mild noise, ``train.txt``, ``train_age_group_k.txt``, ``train_label_pair.txt``."""
    rng = np.random.default_rng(0)
    entries = []
    for group in range(age_groups):
        for i in range(per_group):
            rel = f"faces/g{group}_{i}.png"
            image = np.full((size, size, 3), group_colour(group), np.uint8)
            image[::4, ::4] = rng.integers(0, 255, image[::4, ::4].shape, dtype=np.uint8) // 8 \
                + group_colour(group)
            (root / "faces").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / rel)
            entries.append((rel, group))
    lists.write_image_list(str(root / lists.TRAIN_LIST), entries)
    for group in range(age_groups):
        lists.write_image_list(str(root / lists.age_group_list("train", group)),
                               [e for e in entries if e[1] == group])
    lists.write_label_pairs(str(root / lists.LABEL_PAIR_LIST), list(pairs))
    return root


def run_tiny_training(data, checkpoint_dir, *extra, timeout=900):
    """``train_ipcgan.py`` on a :func:`make_list_dataset` folder at 16 px, batch 2, random
    AlexNet, a checkpoint every step: ``subprocess.CompletedProcess`` with text output."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "train_ipcgan.py", f"--list_dir={data}", "--batch_size=2",
         "--image_size=16", "--allow_random_alexnet", "--log_interval=1",
         "--sample_interval=1000", "--save_interval=1", "--max_to_keep=0",
         f"--checkpoint_dir={checkpoint_dir}", f"--sample_dir={checkpoint_dir}/samples", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tiny_dataset(tmp_path):
    return make_list_dataset(tmp_path / "data")


def write_tf1_checkpoint(prefix: str, values: dict) -> str:
    """Saves ``{tf1_name: ndarray}`` as a TF1 name-based checkpoint, the way the release did:
    ``tf.compat.v1`` variables in a graph, written by a ``tf.compat.v1.train.Saver``."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.get_variable(
            name, shape=np.shape(v), dtype=tf.float32,
            initializer=tf.compat.v1.zeros_initializer()) for name, v in values.items()}
        saver = tf.compat.v1.train.Saver(list(variables.values()))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for name, variable in variables.items():  # fed, not baked into the graph
                variable.load(values[name], session)
            return saver.save(session, prefix, write_meta_graph=False)


# --------------------------------------------------------------------------- child processes

class LoggedProcess:
    """A child process whose stdout and stderr go to ``LOG_DIR/NAME.out`` / ``.err``.

    Files, not pipes: a pipe nobody drains fills up (64 KB) and blocks the child, which for a
    worker of a multi-worker run blocks every other worker too. ``out`` / ``err`` read what was
    written so far. Processes still running when their test ends are killed (see
    ``_kill_leftover_processes``).
    """

    running = []

    def __init__(self, command, log_dir, name, env=None, cwd=REPO):
        self.name = name
        self.out_path = Path(log_dir) / f"{name}.out"
        self.err_path = Path(log_dir) / f"{name}.err"
        env = dict(os.environ if env is None else env)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env,
                                            stdout=out, stderr=err)
        LoggedProcess.running.append(self)

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def wait(self, timeout=1200) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name}: still running after {timeout} s, killed; "
                                 f"stderr ends: {self.err[-2000:]}") from None


#: Generous limits for child processes: a training process's start-up takes ~15 s on a quiet
#: 2-core machine and many times that when other work shares the cores.
WAIT_LIMIT = 900


def wait_for(condition, run: LoggedProcess, timeout=WAIT_LIMIT, what="the awaited moment"):
    """Polls ``condition()`` every 5 ms while ``run`` is alive."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.process.poll() is None, (f"{run.name} ended (exit {run.process.returncode}) "
                                            f"before {what}; stderr ends: {run.err[-2000:]}")
        assert time.monotonic() < deadline, f"{run.name}: timed out waiting for {what}"
        time.sleep(0.005)


def sigkill_after_step(run: LoggedProcess, step: int, delay: float, seed: int,
                       checkpoints) -> str:
    """Waits for ``run``'s progress line of ``step``, sleeps ``delay`` s (the random moment),
    SIGKILLs it and asserts the kill is what ended it. Returns the moment described (the kill
    seed, delay, and ``sorted(checkpoints())``: what was on disk at the kill), also printed,
    so a failure further on can be replayed."""
    wait_for(lambda: f"\nstep {step}/" in "\n" + run.out, run, what=f"step {step}")
    time.sleep(delay)
    run.send_signal(signal.SIGKILL)
    moment = (f"kill seed {seed}: SIGKILL {delay:.3f} s after the line of step {step}; "
              f"at the kill: {sorted(checkpoints())}")
    print(moment)
    assert run.wait(timeout=60) == -signal.SIGKILL, f"the run ended before the kill ({moment})"
    return moment


def free_ports(count):
    """``count`` distinct ports that are free now, chosen at random *below* the kernel's
    ephemeral range: a port the kernel handed out (``bind(("", 0))``) and we closed could be
    given again to any process's outgoing connection before TensorFlow binds it; a port below
    the range is only ever taken by an explicit bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    rng, ports = random.Random(), []
    while len(ports) < count:
        port = rng.randrange(10000, max(ephemeral_low, 10001))
        with socket.socket() as probe:
            try:
                probe.bind(("localhost", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


#: Set to replay a failed run's kill moments (the tests print the seed they used).
KILL_SEED_ENV = "FACE_AGING_TEST_KILL_SEED"


def kill_rng(what: str):
    """``(random.Random, seed)`` for choosing kill moments. The seed is printed (pytest shows it
    with a failure) and read from ``$FACE_AGING_TEST_KILL_SEED`` when set, so a failing
    moment can be replayed."""
    seed = int(os.environ.get(KILL_SEED_ENV) or random.SystemRandom().randrange(2**31))
    print(f"{what}: kill seed {seed} (replay: {KILL_SEED_ENV}={seed})")
    return random.Random(seed), seed


_LIBC_NAME = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_NAME) if _LIBC_NAME else None


@pytest.fixture(autouse=True)
def _return_freed_memory():
    """After each test: collect its dead networks (tf.function caches keep them in reference
    cycles) and hand freed heap back to the OS. Two xdist workers that had grown to 8-10 GB
    each, beside the training children of other tests, ran a 24 GB CI machine out of memory."""
    yield
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):  # glibc only
        _LIBC.malloc_trim(0)


@pytest.fixture(autouse=True)
def _kill_leftover_processes():
    """A test that fails half-way leaves no training process behind on the shared CPUs."""
    before = len(LoggedProcess.running)
    yield
    for run in LoggedProcess.running[before:]:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()
    del LoggedProcess.running[before:]


#: Set by each pytest controller to a value of its own, inherited by its workers and their
#: children: a worker id alone (``gw0``) is not unique when a test runs pytest inside pytest
#: (tests/test_ci_policy.py), and the inner run's clean-up once SIGKILLed a child of the outer
#: suite's ``gw0``.
SESSION_ENV = "FACE_AGING_TEST_SESSION"


def processes_started_under(worker_id: str):
    """PIDs of the live processes (not this one) whose environment says they were started by
    xdist worker ``worker_id`` (``PYTEST_XDIST_WORKER``, which every child inherits) of this
    pytest session (:data:`SESSION_ENV`). Linux (/proc); elsewhere none are found."""
    markers = {f"PYTEST_XDIST_WORKER={worker_id}".encode(),
               f"{SESSION_ENV}={os.environ.get(SESSION_ENV, '')}".encode()}
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if markers <= set(environment.split(b"\0")) and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


#: The modules that start many training processes, longest first (their wall time on the
#: 2-core CI machine: ~650, 420, 320, 230, 200, 195, 175, 140, 135 s). They run before the
#: rest: with ``-n 2 --dist loadfile`` a long module handed out last kept one worker busy for
#: minutes after the other had finished, and it ran on a worker already grown to ~8 GB.
SLOW_MODULES_FIRST = ("test_scale.py", "test_fault_tolerance.py", "test_precision.py",
                      "test_training.py", "test_reconstruction.py", "test_train_cli.py",
                      "test_pretrain_faults.py", "test_pretrain.py", "test_cyclegan_faults.py")


def pytest_configure(config):
    """xdist would reorder the modules by their number of tests (``--loadscope-reorder``, its
    default): keep the order ``pytest_collection_modifyitems`` gives. The controller (not a
    worker) marks this session for :func:`processes_started_under`."""
    if not hasattr(config, "workerinput"):
        os.environ[SESSION_ENV] = f"{os.getpid()}-{time.time_ns()}"
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    """Slow modules first (``SLOW_MODULES_FIRST``); the others after, in their usual order.
    Every xdist worker sorts alike, as xdist requires."""
    rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """A worker that died (``error`` set: the kernel's OOM killer, a crash) never ran its
    tests' teardown, so the training children of its last test run on as orphans: once, two
    distributed workers waiting for a dead peer kept both CPUs busy until CI's time limit.
    The controller kills them."""
    if error is None:
        return
    for pid in processes_started_under(node.gateway.id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            print(f"\nkilled process {pid}, left running by dead worker {node.gateway.id}")


# --------------------------------------------------------------------------- checkpoints

#: What train_ipcgan.py's checkpoints hold besides the input position.
IPCGAN_STATE = ("generator", "discriminator", "g_optimizer", "d_optimizer", "step")


def checkpoint_values(prefix, roots=IPCGAN_STATE) -> dict:
    """{name: value} of every variable of a TF2 checkpoint under the object names ``roots``."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.split("/")[0] in roots}


def assert_identical(a: dict, b: dict, at_least=300):
    """Same variable names, and every value equal bit for bit."""
    assert a.keys() == b.keys() and len(a) >= at_least, (len(a), sorted(a.keys() ^ b.keys())[:5])
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --------------------------------------------------------------------------- skips in CI

def running_in_ci() -> bool:
    """``CI`` set to true (GitHub Actions and most CI services set ``CI=true``; .ci/run does)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _fail_a_skip(report):
    if report.skipped and not hasattr(report, "wasxfail") and running_in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped, and CI=true allows no skip: {reason}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a skipped test fails: CI installs every optional extra and has the
    ../shared data, so a skip there means a check silently did not run."""
    return _fail_a_skip((yield))


#: Modules skipped while collected under CI=true (``pytest.importorskip`` at module level).
_SKIPPED_MODULES = []


def pytest_collectreport(report):
    """A module skipped while collected (``pytest.importorskip``) fails the run too, under
    ``CI=true``: recorded here (with xdist, in the controller, which sees every worker's
    skipped collection), turned into the exit status and a summary line at the end. Failing the
    collection itself would stop pytest from running the other modules."""
    if report.skipped and running_in_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        _SKIPPED_MODULES.append(f"{report.nodeid}: {str(reason).removeprefix('Skipped: ')}")


def pytest_terminal_summary(terminalreporter):
    for line in _SKIPPED_MODULES:
        terminalreporter.write_line(f"FAILED {line} (skipped, and CI=true allows no skip)",
                                    red=True, bold=True)


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED_MODULES and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

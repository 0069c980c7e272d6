"""Fixtures shared by the whole suite: the lab fleet and running maint as a real subprocess."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from maint.lab import Lab
from maint.testing import running_lab

LAB_HOSTS = 6

RunMaint = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab of 6 real sshd hosts for the whole session, on a free port from 20000 up.

    Tests that break a host must fix it before they end (use ``maint.testing.broken``). A host that
    was down comes back with a new pid: read pids with ``maint.lab.load(lab.directory)``.
    """
    with running_lab(tmp_path_factory.mktemp("lab"), LAB_HOSTS) as fleet:
        yield fleet


@pytest.fixture(autouse=True)
def own_state_and_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's user state directory (the default store without a maint.yml, for root /var/lib/maint when
    $XDG_STATE_HOME is not set) and user configuration directory are its own, in this process and in the maint
    processes it starts."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


@pytest.fixture(scope="session")
def maint_bin() -> Path:
    """The ``maint`` console script of the Python running the tests."""
    path = Path(sys.executable).parent / "maint"
    if not path.exists():
        pytest.fail(f"{path} not found: install maint into this environment (pip install -e .)")
    return path


@pytest.fixture
def run_maint(maint_bin: Path, tmp_path: Path) -> RunMaint:
    """Run ``maint ARGS...`` as a real subprocess and return its CompletedProcess (text output).

    Call as ``run_maint("lab", "status", cwd=..., env={"MAINT_DB": ...}, timeout=60)``. ``env`` is
    added to the current environment; the working directory defaults to the test's tmp_path, so a
    default ``.maint/`` never lands in the source tree. The exit code is not checked.
    """

    def run(
        *args: str | os.PathLike[str],
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        environment = dict(os.environ)
        # A crash's traceback stays with the test rather than in a shared /tmp file.
        environment["MAINT_DEBUG_LOG"] = str(tmp_path / "maint-debug.log")
        environment.update(env or {})
        return subprocess.run(
            [str(maint_bin), *(str(arg) for arg in args)],
            cwd=cwd or tmp_path,
            env=environment,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


class CommandTimedOut(BaseException):
    """An in-process maint command ran past its timeout (a BaseException: maint's own handlers let it through)."""


@contextlib.contextmanager
def deadline(seconds: float, argv: list[str]) -> Iterator[None]:
    """Raise CommandTimedOut in the main thread after ``seconds``, as subprocess.run's timeout would end the run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise CommandTimedOut(f"maint {' '.join(argv)} did not end within {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def maint_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunMaint:
    """``run_maint``'s twin that calls ``maint.cli.main`` in this process (click's CliRunner isolation captures
    its output and stdin): for what a command decides and prints, without a Python start and maint's imports
    per call. Same call and CompletedProcess; a command still running after ``timeout`` seconds fails the test
    (SIGALRM, when the test runs in the main thread). Keep the subprocess
    (``run_maint``) for the path a user takes: at least one test per command goes through it."""
    from click.testing import CliRunner

    from maint.cli import main

    def run(
        *args: str | os.PathLike[str],
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(arg) for arg in args]
        with monkeypatch.context() as patch:
            patch.chdir(cwd or tmp_path)
            patch.setenv("MAINT_DEBUG_LOG", str(tmp_path / "maint-debug.log"))
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            # ansible-core remembers which host_vars and group_vars files and directories exist for the life of
            # its process (host_group_vars.FOUND, NAK); lab faults add and remove such files, as a new maint
            # process would see.
            vars_plugin = sys.modules.get("ansible.plugins.vars.host_group_vars")
            if vars_plugin is not None:
                vars_plugin.FOUND.clear()
                vars_plugin.NAK.clear()
            with CliRunner().isolation(input=input) as (stdout, stderr, _), deadline(timeout, argv):
                try:
                    main(argv)
                    code: object = 0
                except SystemExit as exit:
                    code = exit.code
        returncode = code if isinstance(code, int) else 0 if code is None else 1
        return subprocess.CompletedProcess(["maint", *argv], returncode, stdout.getvalue().decode(),
                                           stderr.getvalue().decode())  # fmt: skip

    return run

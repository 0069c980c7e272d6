"""Whether a run's controller process is gone (maint.processes)."""

from __future__ import annotations

import os
import subprocess
import sys

from maint.processes import controller_name, run_pid, run_stale


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_pid_of_a_resumed_run_is_its_last_resumes() -> None:
    assert run_pid({"pid": 10}) == 10
    assert run_pid({"pid": 10, "resumed": [{"pid": 11}, {"pid": 12}]}) == 12
    assert run_pid({}) is None
    assert run_pid(None) is None


def test_a_running_run_of_this_controller_without_its_process_is_stale() -> None:
    here, gone = controller_name(), dead_pid()
    assert run_stale("running", here, {"pid": gone})
    assert not run_stale("running", here, {"pid": os.getpid()})  # alive (a Python process)
    # A resume that is still working keeps its run alive, although the first process is gone.
    assert not run_stale("running", here, {"pid": gone, "resumed": [{"pid": os.getpid()}]})
    assert not run_stale("ok", here, {"pid": gone})
    assert not run_stale("running", "another-controller", {"pid": gone})  # cannot be checked from here
    assert not run_stale("running", here, {})

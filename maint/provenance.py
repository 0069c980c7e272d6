"""Who ran maint, where and in which CI job: the facts a run records about itself.

Redaction of what is recorded (the command line, variables) lives in :mod:`maint.secrets`, process
liveness (is a recorded run's controller process still there) in :mod:`maint.processes`.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping

from maint.secrets import SECRET_NAME

# CI job facts: every variable of these CI systems (GitLab's CI_*, GitHub's GITHUB_*/RUNNER_*,
# Jenkins' JENKINS_* and its job variables), less any whose name looks secret.
CI_PREFIXES = ("CI_", "GITHUB_", "GITLAB_", "JENKINS_", "RUNNER_")
CI_NAMES = (
    "CI", "BUILD_URL", "BUILD_NUMBER", "BUILD_ID", "BUILD_TAG", "JOB_NAME", "JOB_BASE_NAME", "JOB_URL",
    "NODE_NAME", "EXECUTOR_NUMBER", "GIT_COMMIT", "GIT_BRANCH", "GIT_URL",
)  # fmt: skip
# A CI job (not a person at a shell) is running maint when one of these is set.
CI_MARKERS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILD_URL")
CI_SECRET_NAME = re.compile(r"jwt|private|cookie|session", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def operator_name() -> str:
    """The real user behind the run: SUDO_USER when run through sudo, else the login name."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        return sudo_user
    try:
        return os.getlogin()
    except OSError:
        return getpass.getuser()


def ci_metadata(environ: Mapping[str, str]) -> dict[str, str]:
    """The CI job facts found in ``environ``: identifiers and URLs only. Variables whose name looks
    secret (token, password, key, JWT, ...) are left out and credentials in URLs masked."""
    found = {}
    for name in sorted(environ):
        value = environ[name]
        if not value or not (name in CI_NAMES or name.startswith(CI_PREFIXES)):
            continue
        if SECRET_NAME.search(name) or CI_SECRET_NAME.search(name):
            continue
        found[name] = URL_CREDENTIALS.sub(r"\1***@", value)[:500]
    return found


def in_ci(environ: Mapping[str, str]) -> bool:
    """Whether a CI job runs maint (its job is recorded instead of a --reason)."""
    return any(environ.get(name) for name in CI_MARKERS)

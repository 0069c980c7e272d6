"""The zendesk, jira, github and pagerduty ticket backends, against local fakes of the vendors' APIs.

These are SaaS that cannot run here. Every test talks HTTP to a fake on 127.0.0.1 (real sockets,
built on tests/helpers/http_fake.py) that follows the vendor's documented request and response
shapes and validates what it receives like the real API where it matters (auth, required fields,
404 for unknown ids, 400/422 for bad bodies):

- fake_zendesk: Zendesk Support API v2, tickets (list by external_id, create, update) and comments;
- fake_jira: Jira Cloud platform REST API v2, issue, search/jql, comment and transitions;
- fake_github: GitHub REST API v3, issues, issue comments;
- fake_pagerduty: PagerDuty Events API v2, POST /v2/enqueue.

They prove the backends send what the documentation asks for and map failures to the outbox's two
cases; they cannot prove a vendor's undocumented behaviour.
"""

from __future__ import annotations

import base64
import dataclasses
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fake_github import FakeGitHub
from fake_jira import FakeJira
from fake_pagerduty import FakePagerDuty
from fake_zendesk import FakeZendesk
from http_fake import FakeHTTPServer, Request

from maint import registry
from maint.tickets.backends import BackendRejected, BackendUnavailable, TicketMessage
from maint.tickets.backends.github import GitHubBackend, key_line
from maint.tickets.backends.jira import JiraBackend, key_label
from maint.tickets.backends.pagerduty import PagerDutyBackend
from maint.tickets.backends.zendesk import ZendeskBackend, key_tag

TIMEOUT = 0.5


def message(key: str, action: str = "open", event_id: int = 1, **changes: Any) -> TicketMessage:
    """A ticket action for ``key`` ("HOST/CHECK") as the outbox hands it to a backend."""
    host, _, check = key.partition("/")
    base = TicketMessage(
        action=action, key=key, ticket_id=7, event_id=event_id, host=host, check=check, tier="L1",
        severity="warning", status="open", subject=f"{check} fails on {host}", body=f"{check} failed on {host}.",
        run_id="run-42",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def since(server: FakeHTTPServer, mark: int) -> list[Request]:
    """The requests the server received after the first ``mark`` ones."""
    return server.requests[mark:]


def authorization(request: Request) -> str:
    """The Authorization header of a recorded request."""
    return next(value for name, value in request.headers.items() if name.lower() == "authorization")


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module", autouse=True)
def client_libraries() -> None:
    """Import the client libraries once, so timing assertions measure the network, not imports."""
    import github
    import jira

    assert github and jira


@pytest.fixture(scope="module")
def zendesk() -> Iterator[FakeZendesk]:
    """The Zendesk fake, for the whole module."""
    fake = FakeZendesk().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def jira() -> Iterator[FakeJira]:
    """The Jira fake, for the whole module."""
    fake = FakeJira().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    """The GitHub fake, for the whole module."""
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[FakePagerDuty]:
    """The PagerDuty fake, for the whole module."""
    fake = FakePagerDuty().start()
    yield fake
    fake.stop()


def zendesk_backend(fake: FakeZendesk, url: str | None = None, token: str | None = None,
                    timeout: float = 2.0, **options: Any) -> ZendeskBackend:  # fmt: skip
    settings = {"url": url or fake.url, "email": fake.email, "token": token or fake.token, **options}
    return ZendeskBackend("helpdesk", settings, timeout)


def jira_backend(fake: FakeJira, url: str | None = None, token: str | None = None,
                 timeout: float = 2.0, **options: Any) -> JiraBackend:  # fmt: skip
    settings = {"url": url or fake.url, "user": fake.user, "token": token or fake.token, "project": "OPS", **options}
    return JiraBackend("tracker", settings, timeout)


def github_backend(fake: FakeGitHub, url: str | None = None, token: str | None = None,
                   timeout: float = 2.0, **options: Any) -> GitHubBackend:  # fmt: skip
    settings = {"api_url": url or fake.url, "repository": fake.repository, "token": token or fake.token,
                "write_interval": 0, **options}  # fmt: skip
    return GitHubBackend("issues", settings, timeout)


def pagerduty_backend(fake: FakePagerDuty, url: str | None = None, token: str | None = None,
                      timeout: float = 2.0, **options: Any) -> PagerDutyBackend:  # fmt: skip
    settings = {"url": url or fake.url, "routing_key": token or fake.routing_key, **options}
    return PagerDutyBackend("oncall", settings, timeout)


# Zendesk


def test_zendesk_ticket_lifecycle(zendesk: FakeZendesk) -> None:
    """open/find/comment/escalate/resolve/reopen/delivered send what the Support API v2 documents."""
    backend = zendesk_backend(zendesk, groups={"L2": 200})
    key = "web01/disk"
    expected_auth = "Basic " + base64.b64encode(f"{zendesk.email}/token:{zendesk.token}".encode()).decode()
    mark = len(zendesk.server.requests)
    assert backend.find(key) is None
    ref = backend.open(message(key, event_id=11))
    created = zendesk.server.requests_to("POST", r"/api/v2/tickets\.json")[-1]
    assert authorization(created) == expected_auth
    assert created.headers["Content-Type"].startswith("application/json")
    ticket = created.json()["ticket"]
    assert ticket["subject"] == "disk fails on web01"
    assert ticket["external_id"] == key
    assert ticket["comment"] == {"body": "disk failed on web01.\n\nmaint-event-11", "public": False}
    assert {"maint", key_tag(key)} <= set(ticket["tags"]) and ticket["priority"] == "normal"
    assert "group_id" not in ticket  # no group configured for L1
    assert zendesk.tickets[int(ref)]["external_id"] == key
    listed = since(zendesk.server, mark)[0]
    assert listed.path == "/api/v2/tickets.json" and listed.query["external_id"] == [key]
    assert backend.find(key) == ref

    backend.comment(ref, message(key, "comment", 12, body="Seen again."))
    update = zendesk.server.requests_to("PUT", rf"/api/v2/tickets/{ref}\.json")[-1].json()["ticket"]
    assert update == {"comment": {"body": "Seen again.\n\nmaint-event-12", "public": False}}

    backend.escalate(ref, message(key, "escalate", 13, tier="L2", status="escalated"))
    update = zendesk.server.requests_to("PUT", rf"/api/v2/tickets/{ref}\.json")[-1].json()["ticket"]
    assert update["priority"] == "high" and update["group_id"] == 200
    assert update["comment"]["body"].endswith("maint-event-13") and update["comment"]["public"] is False
    assert backend.delivered(ref, message(key, "escalate", 13))
    assert not backend.delivered(ref, message(key, "escalate", 1))  # maint-event-1 is not maint-event-11..13

    backend.resolve(ref, message(key, "resolve", 14, status="resolved"))
    assert zendesk.tickets[int(ref)]["status"] == "solved"
    assert zendesk.comments[int(ref)][-1]["body"].endswith("maint-event-14")
    assert backend.find(key) is None

    backend.reopen(ref, message(key, "reopen", 15))
    assert zendesk.tickets[int(ref)]["status"] == "open"
    assert backend.find(key) == ref
    assert len(zendesk.comments[int(ref)]) == 5


def test_zendesk_find_follows_cursor_pages_and_skips_solved(zendesk: FakeZendesk) -> None:
    """find walks links.next while meta.has_more; it returns the newest ticket that is not solved/closed."""
    key = "db01/backup"
    for number in range(150):
        ticket_id = 70000 + number
        zendesk.tickets[ticket_id] = {"id": ticket_id, "external_id": key, "subject": "old", "tags": [],
                                      "status": "closed" if number != 120 else "pending"}  # fmt: skip
    backend = zendesk_backend(zendesk)
    mark = len(zendesk.server.requests)
    assert backend.find(key) == "70120"
    pages = since(zendesk.server, mark)
    assert len(pages) == 2 and pages[1].query["page[after]"] == ["100"]


def test_zendesk_rejects_updates_of_a_closed_ticket_and_unknown_groups(zendesk: FakeZendesk) -> None:
    """Zendesk's 422 answers become BackendRejected naming what to fix."""
    backend = zendesk_backend(zendesk, groups={"L3": 999})
    ref = backend.open(message("web02/cpu", event_id=21))
    zendesk.tickets[int(ref)]["status"] = "closed"
    with pytest.raises(BackendRejected, match=r"HTTP 422.*closed prevents ticket update"):
        backend.reopen(ref, message("web02/cpu", "reopen", 22))
    other = backend.open(message("web03/cpu", event_id=23))
    with pytest.raises(BackendRejected, match=r"Group: is invalid.*'groups'"):
        backend.escalate(other, message("web03/cpu", "escalate", 24, tier="L3"))
    with pytest.raises(BackendRejected, match=r"HTTP 404"):
        backend.comment("999999", message("web03/cpu", "comment", 25))


# Jira


def test_jira_issue_lifecycle(jira: FakeJira) -> None:
    """open/find/comment/escalate/resolve/reopen/delivered send what the Jira REST API v2 documents."""
    backend = jira_backend(jira)
    key = "web01/disk"
    label = key_label(key)
    assert " " not in label and label == key_label(key) and label != key_label("web01-disk")
    expected_auth = "Basic " + base64.b64encode(f"{jira.user}:{jira.token}".encode()).decode()
    assert backend.find(key) is None
    search = jira.server.requests_to("GET", r"/rest/api/2/search/jql")[-1]
    assert search.query["jql"] == [f'labels = "{label}" AND statusCategory != Done ORDER BY created DESC']
    assert authorization(search) == expected_auth

    ref = backend.open(message(key, event_id=31))
    fields = jira.server.requests_to("POST", r"/rest/api/2/issue")[-1].json()["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "disk fails on web01"
    assert fields["description"] == "disk failed on web01.\n\nmaint-event-31"
    assert fields["labels"] == [label, "maint", "maint-L1"] and fields["priority"] == {"name": "Medium"}
    assert ref.startswith("OPS-") and backend.find(key) == ref

    backend.comment(ref, message(key, "comment", 32, body="Seen again."))
    assert jira.comments[ref][-1]["body"] == "Seen again.\n\nmaint-event-32"

    backend.escalate(ref, message(key, "escalate", 33, tier="L3"))
    edit = jira.server.requests_to("PUT", r"/rest/api/2/issue/[^/]+")[-1].json()
    assert edit["fields"] == {"priority": {"name": "Highest"}}
    assert {"add": "maint-L3"} in edit["update"]["labels"] and {"remove": "maint-L1"} in edit["update"]["labels"]
    assert jira.issues[ref]["fields"]["labels"] == [label, "maint", "maint-L3"]
    assert jira.comments[ref][-1]["body"].endswith("maint-event-33")

    backend.resolve(ref, message(key, "resolve", 34, status="resolved"))
    transition = jira.server.requests_to("POST", rf"/rest/api/2/issue/{ref}/transitions")[-1].json()
    assert str(transition["transition"]["id"]) == "31"  # "Resolve Issue", the one to the Done category
    assert jira.status_of(ref) == "Done" and jira.comments[ref][-1]["body"].endswith("maint-event-34")
    assert backend.find(key) is None
    transitions_before = len(jira.server.requests_to("POST", rf"/rest/api/2/issue/{ref}/transitions"))
    backend.resolve(ref, message(key, "resolve", 34, status="resolved"))  # a re-send: no second transition
    assert len(jira.server.requests_to("POST", rf"/rest/api/2/issue/{ref}/transitions")) == transitions_before

    backend.reopen(ref, message(key, "reopen", 35))
    assert jira.status_of(ref) == "To Do" and backend.find(key) == ref
    assert backend.delivered(ref, message(key, "reopen", 35))
    assert backend.delivered(ref, message(key, "open", 31))  # the description holds the opening's marker
    assert not backend.delivered(ref, message(key, "comment", 3))


def test_jira_named_transitions_bearer_token_and_queue_as_project(jira: FakeJira) -> None:
    """resolve_transition/reopen_transition pick by name; no user means a bearer token; a queue is a project."""
    backend = JiraBackend("tracker", {"url": jira.url, "token": jira.token, "project": "OPS", "priorities": {},
                                      "resolve_transition": "resolve issue", "reopen_transition": "Reopen Issue"},
                          TIMEOUT * 4)  # fmt: skip
    key = "db01/replication"
    ref = backend.open(message(key, event_id=41, queue="NET"))
    created = jira.server.requests_to("POST", r"/rest/api/2/issue")[-1]
    assert authorization(created) == f"Bearer {jira.token}"
    assert created.json()["fields"]["project"] == {"key": "NET"} and "priority" not in created.json()["fields"]
    assert ref.startswith("NET-")
    backend.resolve(ref, message(key, "resolve", 42))
    backend.reopen(ref, message(key, "reopen", 43))
    assert jira.status_of(ref) == "To Do"
    wrong = JiraBackend("tracker", {"url": jira.url, "token": jira.token, "project": "OPS",
                                    "resolve_transition": "Close"}, TIMEOUT * 4)  # fmt: skip
    with pytest.raises(BackendRejected, match=r"no transition 'Close'.*fix 'resolve_transition'"):
        wrong.resolve(ref, message(key, "resolve", 44))


def test_jira_rejects_unknown_project_and_issue(jira: FakeJira) -> None:
    """Jira's 400 and 404 answers become BackendRejected with the server's reason and the setting to fix."""
    backend = jira_backend(jira, project="NOPE")
    with pytest.raises(BackendRejected, match=r"HTTP 400.*valid project is required.*'project'"):
        backend.open(message("web04/ntp", event_id=51))
    with pytest.raises(BackendRejected, match=r"HTTP 404.*Issue does not exist"):
        backend.comment("OPS-999", message("web04/ntp", "comment", 52))


# GitHub


def test_github_issue_lifecycle(github: FakeGitHub) -> None:
    """open/find/comment/escalate/resolve/reopen/delivered send what the GitHub REST API v3 documents."""
    backend = github_backend(github)
    key = "web01/disk"
    github.add_pull_request("a pull request quoting the key", key_line(key), ["maint"])
    assert backend.find(key) is None  # the pull request does not count
    listed = github.server.requests_to("GET", r"/repos/example-org/ops/issues")[-1]
    assert listed.query["state"] == ["open"] and listed.query["labels"] == ["maint"]
    assert authorization(listed) == f"token {github.token}"

    ref = backend.open(message(key, event_id=61, queue="team-storage"))
    created = github.server.requests_to("POST", r"/repos/example-org/ops/issues")[-1].json()
    assert created["title"] == "disk fails on web01"
    assert created["body"] == f"disk failed on web01.\n\nmaint-event-61\n\n{key_line(key)}"
    assert created["labels"] == ["maint", "maint:L1", "team-storage"]
    assert backend.find(key) == ref

    backend.comment(ref, message(key, "comment", 62, body="Seen again."))
    assert github.comments[int(ref)][-1]["body"] == "Seen again.\n\nmaint-event-62"

    backend.escalate(ref, message(key, "escalate", 63, tier="L2"))
    edit = github.server.requests_to("PATCH", rf"/repos/example-org/ops/issues/{ref}")[-1].json()
    assert edit == {"labels": ["maint", "team-storage", "maint:L2"]}
    assert github.comments[int(ref)][-1]["body"].endswith("maint-event-63")

    backend.resolve(ref, message(key, "resolve", 64))
    edit = github.server.requests_to("PATCH", rf"/repos/example-org/ops/issues/{ref}")[-1].json()
    assert edit == {"state": "closed", "state_reason": "completed"}
    assert backend.find(key) is None

    backend.reopen(ref, message(key, "reopen", 65))
    assert github.issues[int(ref)]["state"] == "open" and backend.find(key) == ref
    assert backend.delivered(ref, message(key, "reopen", 65))
    assert backend.delivered(ref, message(key, "open", 61))
    assert not backend.delivered(ref, message(key, "comment", 6))


def test_github_rejects_unknown_repository_and_issue(github: FakeGitHub) -> None:
    """GitHub's 404 becomes BackendRejected naming 'repository'."""
    backend = github_backend(github, repository="example-org/missing")
    with pytest.raises(BackendRejected, match=r"HTTP 404.*'repository'"):
        backend.find("web01/disk")
    with pytest.raises(BackendRejected, match=r"HTTP 404"):
        github_backend(github).comment("4242", message("web01/disk", "comment", 71))


# PagerDuty


def test_pagerduty_event_lifecycle(pagerduty: FakePagerDuty) -> None:
    """Each action is one Events API v2 event with dedup_key = HOST/CHECK; find and delivered stay empty-handed."""
    backend = pagerduty_backend(pagerduty, severities={"critical": "error"})
    key = "web01/disk"
    assert backend.find(key) is None
    ref = backend.open(message(key, event_id=81, severity="critical"))
    assert ref == key
    trigger = pagerduty.server.requests_to("POST", r"/v2/enqueue")[-1].json()
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == key
    assert trigger["routing_key"] == pagerduty.routing_key
    payload = trigger["payload"]
    assert payload["summary"] == "disk fails on web01" and payload["source"] == "web01"
    assert payload["component"] == "disk" and payload["severity"] == "error"
    assert payload["custom_details"]["tier"] == "L1" and payload["custom_details"]["run_id"] == "run-42"
    assert payload["custom_details"]["marker"] == "maint-event-81"
    assert payload["custom_details"]["body"] == "disk failed on web01."

    backend.comment(ref, message(key, "comment", 82, body="Seen again."))
    backend.escalate(ref, message(key, "escalate", 83, tier="L2"))
    alert = pagerduty.alert(key)
    assert alert["status"] == "triggered" and len(alert["log"]) == 3
    assert alert["payload"]["custom_details"]["tier"] == "L2"
    backend.comment(ref, message(key, "acknowledge", 84))
    assert pagerduty.alert(key)["status"] == "acknowledged"
    assert pagerduty.events[-1] == {"routing_key": pagerduty.routing_key, "event_action": "acknowledge",
                                    "dedup_key": key}  # fmt: skip

    backend.resolve(ref, message(key, "resolve", 85))
    assert pagerduty.events[-1]["event_action"] == "resolve" and pagerduty.alert(key)["status"] == "resolved"
    backend.reopen(ref, message(key, "reopen", 86))
    assert len(pagerduty.alerts[key]) == 2 and pagerduty.alert(key)["status"] == "triggered"
    assert backend.delivered(ref, message(key, "reopen", 86)) is False


def test_pagerduty_rejects_a_bad_severity_mapping_before_sending(pagerduty: FakePagerDuty) -> None:
    """A severity PagerDuty does not know is caught locally, naming 'severities'."""
    backend = pagerduty_backend(pagerduty, severities={"warning": "major"})
    mark = len(pagerduty.server.requests)
    with pytest.raises(BackendRejected, match=r"'major' is not a PagerDuty severity.*'severities'"):
        backend.open(message("web05/raid", event_id=91))
    assert len(pagerduty.server.requests) == mark


# Failures, for every vendor


@dataclass(frozen=True)
class Vendor:
    """How to build a vendor's backend against its fake, and one call that goes to the network."""

    fixture: str
    make: Callable[..., Any]
    probe: Callable[[Any], object]
    secret_setting: str
    effective_timeout: float = TIMEOUT


VENDORS = {
    "zendesk": Vendor("zendesk", zendesk_backend, lambda backend: backend.find("web09/probe"), "token"),
    "jira": Vendor("jira", jira_backend, lambda backend: backend.find("web09/probe"), "token"),
    # PyGithub takes whole seconds: 0.5 s becomes 1 s.
    "github": Vendor("github", github_backend, lambda backend: backend.find("web09/probe"), "token", 1.0),
    "pagerduty": Vendor("pagerduty", pagerduty_backend, lambda backend: backend.open(message("web09/probe")),
                        "routing_key"),
}  # fmt: skip


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> tuple[Vendor, Any]:
    """Each vendor with its running fake."""
    chosen = VENDORS[request.param]
    return chosen, request.getfixturevalue(chosen.fixture)


def test_server_errors_are_unavailable(vendor: tuple[Vendor, Any]) -> None:
    """HTTP 5xx (the fake answers 503) means try again later."""
    chosen, fake = vendor
    backend = chosen.make(fake, timeout=TIMEOUT)
    fake.server.fault = "error"
    try:
        with pytest.raises(BackendUnavailable, match=r"503"):
            chosen.probe(backend)
    finally:
        fake.server.fault = None


def test_rate_limits_are_unavailable(vendor: tuple[Vendor, Any]) -> None:
    """HTTP 429 means try again later, without sleeping in the backend."""
    chosen, fake = vendor
    backend = chosen.make(fake, timeout=TIMEOUT)
    fake.rate_limited = True
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable):
            chosen.probe(backend)
    finally:
        fake.rate_limited = False
    assert time.monotonic() - started < 1.0


def test_refused_connections_are_unavailable_at_once(vendor: tuple[Vendor, Any]) -> None:
    """Nothing listening: BackendUnavailable right away (no retries, no backoff)."""
    chosen, fake = vendor
    backend = chosen.make(fake, url=f"http://127.0.0.1:{closed_port()}", timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"refused"):
        chosen.probe(backend)
    assert time.monotonic() - started < 0.5


def test_bad_credentials_are_rejected_without_the_secret(vendor: tuple[Vendor, Any]) -> None:
    """A wrong token (routing key) is BackendRejected; the message names the setting, never its value."""
    chosen, fake = vendor
    secret = "WRONGSECRET0123456789abcdefghijk"  # 32 characters, like a routing key
    backend = chosen.make(fake, token=secret, timeout=TIMEOUT)
    with pytest.raises(BackendRejected) as caught:
        chosen.probe(backend)
    text = str(caught.value)
    assert secret not in text and fake_secret(fake) not in text
    assert f"'{chosen.secret_setting}'" in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def fake_secret(fake: Any) -> str:
    """The credential the fake accepts (token or routing key)."""
    return str(getattr(fake, "token", None) or fake.routing_key)


def test_slow_servers_are_unavailable_within_the_timeout(vendor: tuple[Vendor, Any]) -> None:
    """A server that does not answer costs about ``timeout`` seconds, then BackendUnavailable."""
    chosen, fake = vendor
    backend = chosen.make(fake, timeout=TIMEOUT)
    fake.server.hang_seconds = chosen.effective_timeout + 1.0
    fake.server.fault = "hang"
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable, match=r"no answer"):
            chosen.probe(backend)
    finally:
        fake.server.fault = None
    elapsed = time.monotonic() - started
    assert chosen.effective_timeout * 0.9 <= elapsed < chosen.effective_timeout + 0.6


# Registration and settings


CLASSES = {"zendesk": ZendeskBackend, "jira": JiraBackend, "github": GitHubBackend, "pagerduty": PagerDutyBackend}


@pytest.mark.parametrize("name, backend_class", sorted(CLASSES.items()))
def test_backends_are_registered_and_describe_their_settings(name: str, backend_class: type[Any]) -> None:
    """The entry point finds the class; every setting has help and an example; secrets are marked."""
    assert registry.load(registry.TICKET_BACKENDS, name) is backend_class
    assert backend_class.description and backend_class.__doc__
    for setting, option in backend_class.options.items():
        assert option.help and option.example is not None, setting
        assert option.secret == (setting in ("token", "routing_key")), setting


def test_defaults_point_at_the_public_services_and_missing_settings_fail_without_io() -> None:
    """The constructors do no I/O; default URLs follow the vendors' public patterns; gaps are BackendRejected."""
    assert ZendeskBackend("z", {"subdomain": "example", "email": "a@b", "token": "t"}, 5).base_url == (
        "https://example.zendesk.com"
    )
    assert GitHubBackend("g", {"repository": "o/r", "token": "t"}, 5).api_url == "https://api.github.com"
    assert PagerDutyBackend("p", {"routing_key": "k"}, 5).url == "https://events.pagerduty.com"
    incomplete = [
        (ZendeskBackend("z", {"email": "a@b", "token": "t"}, 5), "'subdomain' or 'url'"),
        (JiraBackend("j", {"project": "OPS", "token": "t"}, 5), "'url' and 'token'"),
        (GitHubBackend("g", {"repository": "just-a-name", "token": "t"}, 5), "'repository' (owner/name)"),
        (PagerDutyBackend("p", {}, 5), "'routing_key'"),
    ]
    for backend, setting in incomplete:
        with pytest.raises(BackendRejected) as caught:
            backend.comment("1", message("web01/disk", "comment"))
        assert setting in str(caught.value)

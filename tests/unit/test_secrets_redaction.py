"""Secrets masked in every form a command line or a URL can carry them (maint.secrets)."""

from __future__ import annotations

import json

import pytest

from maint.secrets import holds_mask, mask_url_credentials, redact_argv, redact_vars

SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        (["-e", f"db_password={SECRET}"], ["-e", "db_password=***"]),
        (["-e", f'{{"db_password":"{SECRET}"}}'], ["-e", '{"db_password": "***"}']),
        (["-e", f'{{"nested": {{"api_token": "{SECRET}", "region": "eu"}}}}'],
         ["-e", '{"nested": {"api_token": "***", "region": "eu"}}']),
        (["-e", f"{{nested: {{list: [{{password: {SECRET}}}]}}}}"],
         ["-e", '{"nested": {"list": [{"password": "***"}]}}']),
        ([f"--extra-vars=api_token={SECRET}"], ["--extra-vars=api_token=***"]),
        (["--extra-vars", f"api_token={SECRET} other=y"], ["--extra-vars", "api_token=*** other=y"]),
        (["--extra-vars", f"api_token='{SECRET} x' other=y"], ["--extra-vars", "api_token=*** other=y"]),
        ([f"-eapi_secret={SECRET}"], ["-eapi_secret=***"]),
        (["-Ce", f"api_key={SECRET}"], ["-Ce", "api_key=***"]),
        ([f"-Ceapi_key={SECRET}"], ["-Ceapi_key=***"]),
        (["-e", "@vars/secrets.yml"], ["-e", "@vars/secrets.yml"]),
        (["-e", f'{{"db_password": "{SECRET}"'], ["-e", "***"]),
        (["--db", f"postgresql://u:{SECRET}@h/db"], ["--db", "postgresql://u:***@h/db"]),
        ([f"--db=postgresql://u:{SECRET}@h:5432/db"], ["--db=postgresql://u:***@h:5432/db"]),
        (["-e", f"url=https://bot:{SECRET}@hooks.example/x"], ["-e", "url=https://bot:***@hooks.example/x"]),
        ([f"--api-token={SECRET}"], ["--api-token=***"]),
        (["-e", "region=eu", "--reason", "a=b", "-l", "web"], ["-e", "region=eu", "--reason", "a=b", "-l", "web"]),
    ],
)
def test_every_form_of_a_secret_in_argv_is_masked(arguments: list[str], shown: list[str]) -> None:
    redacted = redact_argv(["maint", "run", "health", *arguments])
    assert redacted == ["maint", "run", "health", *shown]
    assert SECRET not in json.dumps(redacted)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"postgresql://u:{SECRET}@h/db", "postgresql://u:***@h/db"),
        (f"cannot open store postgresql+psycopg://maint:{SECRET}@127.0.0.1:5/x: refused",
         "cannot open store postgresql+psycopg://maint:***@127.0.0.1:5/x: refused"),
        (f"POST https://hook:{SECRET}@127.0.0.1:9/x answered 500", "POST https://hook:***@127.0.0.1:9/x answered 500"),
        (f"'https://u:p@{SECRET}@h/'", "'https://u:***@h/'"),
        ("ssh://deploy@host:22/ and https://example.org/a@b", "ssh://deploy@host:22/ and https://example.org/a@b"),
    ],
)
def test_url_passwords_are_masked_in_any_text(text: str, shown: str) -> None:
    assert mask_url_credentials(text) == shown


def test_recorded_variables_are_masked_at_any_depth() -> None:
    variables = {"api_token": SECRET, "nested": {"db": {"password": SECRET}, "list": [{"secret_key": SECRET}]},
                 "dsn": f"postgresql://u:{SECRET}@h/db", "region": "eu", "count": 3}  # fmt: skip
    redacted = redact_vars(variables)
    assert SECRET not in json.dumps(redacted)
    assert redacted["region"] == "eu" and redacted["count"] == 3 and redacted["dsn"] == "postgresql://u:***@h/db"
    assert holds_mask(redacted["nested"]) and not holds_mask(redacted["region"])

"""Log lines in logfmt or JSON, with secrets redacted wherever they slip in."""

from __future__ import annotations

import json
import logging

import pytest

from exporter.logs import REDACTED, JsonFormatter, LogfmtFormatter, RedactSecrets

SECRET = "sk-0123456789-secret"


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad key {SECRET}")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("exporter.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_logfmt_quotes_what_needs_quoting():
    line = LogfmtFormatter().format(record('refresh failed error="x" at=%s', "a b"))
    assert line.startswith("ts=") and " level=warning logger=exporter.test " in line
    assert line.endswith('msg="refresh failed error=\\"x\\" at=a b"')


def test_json_lines_parse():
    doc = json.loads(JsonFormatter().format(record("hello %s", "world")))
    assert (doc["level"], doc["msg"], doc["logger"]) == ("warning", "hello world", "exporter.test")


@pytest.mark.parametrize("formatter", [LogfmtFormatter(), JsonFormatter()])
def test_secrets_are_redacted_from_messages_arguments_and_tracebacks(formatter):
    learnt: list[str] = []
    redact = RedactSecrets(lambda: [SECRET])
    redact.add_source(lambda: learnt)
    learnt.append("token-learnt-at-runtime")
    for rec in (
        record(f"inline {SECRET}"),
        record("argument %s", SECRET),
        record("token %s", "token-learnt-at-runtime"),
        record("failed", exc=True),
    ):
        assert redact.filter(rec)
        line = formatter.format(rec)
        assert SECRET not in line and "token-learnt-at-runtime" not in line
        assert REDACTED in line

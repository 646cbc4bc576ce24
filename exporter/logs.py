"""Logging in logfmt or JSON, with every configured secret redacted from every record."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable

REDACTED = "[REDACTED]"


class RedactSecrets(logging.Filter):
    """Replaces any secret value that slipped into a message, its arguments or traceback.

    Secrets come from sources asked at each record: the configured ones, and those learnt
    at run time (IAM tokens, temporary keys).
    """

    def __init__(self, *sources: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self.sources = list(sources)

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        self.sources.append(source)

    def secrets(self) -> list[str]:
        found = {s for source in self.sources for s in source() if len(s) >= 4}
        return sorted(found, key=len, reverse=True)  # a secret containing another goes first

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self.secrets()
        if not secrets:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        record.msg, record.args = text, None
        return True


class _FieldsFormatter(logging.Formatter):
    """ts, level, logger, msg (and exc): the fields of a record, for a subclass to write."""

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = {
            "ts": f"{created}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            fields["exc"] = record.exc_text
        return fields


class LogfmtFormatter(_FieldsFormatter):
    """`ts=… level=info logger=exporter.pipeline.cache msg="…"`: what Go exporters print too."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in self.fields(record).items())


class JsonFormatter(_FieldsFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False)


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' "=\n\\'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def setup_logging(
    level: str, fmt: str, secrets: Callable[[], Iterable[str]] = list
) -> RedactSecrets:
    """Log to stderr in logfmt or JSON; the returned filter can learn more secrets."""
    redact = RedactSecrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    handler.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # urllib3 logs full URLs at debug; ours are signed but hold no secret. Keep it quiet.
    # Its warnings (a header it cannot parse, with a traceback) repeat what the client logs.
    logging.getLogger("urllib3").setLevel(max(logging.ERROR, root.level))
    return redact

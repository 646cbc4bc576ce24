"""The HTTP server's own counters and their `modelarts_exporter_http_*` self-metrics.

Process-wide (no `project_id`), served beside the metric table's families by the server.
"""

from __future__ import annotations

import threading

from exporter.exposition.formats import Format, format_value, header, series_prefix

REJECT_REASONS = ("timeout", "limit", "busy", "too_large")


class ConnectionStats:
    """Counters of the server, read by the self-metrics; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0  # connected: sending their head, waiting for a worker or answered
        self.answering = 0  # in a worker
        self.accepted = 0
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            self.accepted += 1

    def closed(self, reason: str = "") -> None:
        with self._lock:
            self.open -= 1
            if reason:
                self.rejected[reason] += 1

    def refused(self, reason: str) -> None:
        """A connection accepted and closed at once, never counted open."""
        with self._lock:
            self.accepted += 1
            self.rejected[reason] += 1

    def answer(self, delta: int) -> None:
        with self._lock:
            self.answering += delta

    def exposition(self, fmt: Format) -> bytes:
        """The `modelarts_exporter_http_*` families, process-wide (no project_id)."""
        with self._lock:
            open_, answering, accepted = self.open, self.answering, self.accepted
            rejected = dict(self.rejected)
        parts = [
            header(OPEN, HELP[OPEN], "gauge", fmt),
            f"{OPEN} {format_value(open_)}\n",
            header(ANSWERING, HELP[ANSWERING], "gauge", fmt),
            f"{ANSWERING} {format_value(answering)}\n",
            header(ACCEPTED, HELP[ACCEPTED], "counter", fmt),
            f"{ACCEPTED} {format_value(accepted)}\n",
            header(REJECTED, HELP[REJECTED], "counter", fmt),
            *(
                f"{series_prefix(REJECTED, ('reason',), (reason,))}{format_value(count)}\n"
                for reason, count in rejected.items()
            ),
        ]
        return "".join(parts).encode("utf-8")


OPEN = "modelarts_exporter_http_connections_open"
ANSWERING = "modelarts_exporter_http_requests_in_flight"
ACCEPTED = "modelarts_exporter_http_connections_accepted_total"
REJECTED = "modelarts_exporter_http_connections_rejected_total"
HELP = {
    OPEN: "Client connections open: sending their request, waiting for a worker or being "
    "answered (at most --web.max-connections).",
    ANSWERING: "Requests being answered by a worker thread (at most --web.max-requests, "
    "and two probes).",
    ACCEPTED: "Client connections accepted.",
    REJECTED: "Client connections closed without an answer to their request, by reason: "
    "timeout (the request head was not complete within --web.read-timeout), limit (the "
    "oldest still sending, closed to admit a new one beyond --web.max-connections), busy "
    "(a 503: every connection answering or waiting for a worker), too_large (a request "
    "head over 64 KiB, a 431).",
}
SELF_METRICS = {
    OPEN: ("gauge", ()),
    ANSWERING: ("gauge", ()),
    ACCEPTED: ("counter", ()),
    REJECTED: ("counter", ("reason",)),
}

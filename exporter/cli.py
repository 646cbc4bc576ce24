"""`modelarts-exporter`: parse the settings, wire the parts, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack

from pydantic import SecretStr

from exporter import __version__
from exporter.auth import build_provider
from exporter.cache import SnapshotCache
from exporter.client import ListQuery, ModelArtsClient
from exporter.logs import RedactSecrets, setup_logging
from exporter.render import Renderer
from exporter.server import HttpServer, MetricsApp
from exporter.settings import (
    Settings,
    SettingsError,
    build_parser,
    load_settings,
    parse_listen_address,
)
from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator

log = logging.getLogger("exporter")


def main(argv: Sequence[str] | None = None) -> int:
    flags = vars(build_parser().parse_args(argv))
    if flags.pop("version", False):
        print(f"modelarts-exporter {__version__}")
        return 0
    try:
        settings = load_settings(flags)
    except SettingsError as err:
        print(f"modelarts-exporter: {err}", file=sys.stderr)
        return 2
    redact = setup_logging(settings.log_level, settings.log_format, settings.secret_values)
    with ExitStack() as stack:
        if settings.demo:
            settings = _start_demo(settings, stack)
        try:
            serve(settings, stack, redact)
        except OSError as err:
            log.error("cannot serve on %s: %s", settings.web_listen_address, err.strerror or err)
            return 1
    return 0


def _start_demo(settings: Settings, stack: ExitStack) -> Settings:
    """Start the simulator on loopback and point the normal client path at it."""
    fleet = Fleet(size=settings.demo_instances, seed=settings.demo_seed)
    simulator = stack.enter_context(Simulator(fleet, seed=settings.demo_seed, fault_rate=0.02))
    log.info("demo: simulated ModelArts API at %s with %d notebooks", simulator.url, fleet.size)
    return settings.model_copy(
        update={
            "endpoint": simulator.url,
            "project_id": DEMO_PROJECT_ID,
            "ak": SecretStr(DEMO_AK),
            "sk": SecretStr(DEMO_SK),
            "security_token": None,
        }
    )


def serve(settings: Settings, stack: ExitStack, redact: RedactSecrets) -> None:
    provider = build_provider(settings)
    redact.add_source(provider.secrets)
    client = ModelArtsClient(
        settings.modelarts_endpoint,
        settings.project_id,
        provider,
        query=ListQuery(settings.show_self, settings.pool_id, settings.workspace_id),
        page_size=settings.page_size,
        page_concurrency=settings.page_concurrency,
        request_timeout=settings.request_timeout,
        refresh_budget=settings.refresh_budget,
        max_response_bytes=settings.max_response_bytes,
    )
    stack.callback(client.close)
    cache = SnapshotCache(
        settings.project_id,
        client.list_instances,
        ttl=settings.cache_ttl,
        max_staleness=settings.max_staleness,
        telemetry=client.telemetry,
    )
    app = MetricsApp(
        Renderer(lambda: [cache.status()]),
        ready=lambda: cache.peek().snapshot is not None,
        telemetry_path=settings.web_telemetry_path,
        description=f"Project {settings.project_id} at {settings.modelarts_endpoint}.",
    )
    host, port = parse_listen_address(settings.web_listen_address)
    server = HttpServer(app, host, port)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    log.info(
        "serving version=%s address=%s:%d project_id=%s",
        __version__,
        host,
        server.port,
        settings.project_id,
    )
    # Warm the cache now, so /-/ready turns true without waiting for the first scrape.
    threading.Thread(target=cache.status, name="warm-up", daemon=True).start()
    stopping.wait()
    log.info("shutting down")
    server.stop()

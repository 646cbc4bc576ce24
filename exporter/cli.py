"""`modelarts-exporter`: parse the settings, wire the parts, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack

from pydantic import SecretStr

from exporter import __version__, allocator
from exporter.build import build_info
from exporter.config.command_line import build_parser, load_settings
from exporter.config.fields import parse_listen_address
from exporter.config.settings import Settings, SettingsError
from exporter.config.targets_file import ConfigError, check_unique_projects, load_config
from exporter.http.connections import Limits
from exporter.http.server import HttpServer, MetricsApp
from exporter.http.webconfig import WebConfig, WebConfigError, load_web_config, ssl_context
from exporter.logs import setup_logging
from exporter.pipeline.credentials import ProjectLookupError, resolve_projects
from exporter.pipeline.targets import TargetSet
from exporter.simulator import DEMO_AK, DEMO_PROJECT_ID, DEMO_SK, Fleet, Simulator

log = logging.getLogger("exporter")


def main(argv: Sequence[str] | None = None) -> int:
    allocator.tune()  # before any thread has an arena of its own
    flags = vars(build_parser().parse_args(argv))
    if flags.pop("version", False):
        print(build_info().text(), end="")
        return 0
    try:
        settings = load_settings(flags)
        if settings.config_check:
            return _check_config(settings)
        targets = _targets(settings) if not settings.demo else None
        web_config = load_web_config(settings.web_config_file) if settings.web_config_file else None
        tls = ssl_context(web_config)  # a certificate that does not load stops us: exit 2
    except (SettingsError, ConfigError, WebConfigError) as err:
        print(f"modelarts-exporter: {err}", file=sys.stderr)
        return 2
    redact = setup_logging(settings.log_level, settings.log_format, settings.secret_values)
    if targets is not None:
        targets = _my_shard(settings, targets)
        try:
            targets = _with_project_ids(settings, targets)
        except ProjectLookupError as err:
            log.error("cannot start: %s", err)
            return err.exit_status
        except ConfigError as err:
            print(f"modelarts-exporter: {err}", file=sys.stderr)
            return 2
    with ExitStack() as stack:
        if targets is None:
            settings = _start_demo(settings, stack)
            targets = {settings.project_id: settings}
        target_set = TargetSet(targets)
        stack.callback(target_set.close)
        redact.add_source(target_set.secrets)
        try:
            serve(settings, target_set, web_config, tls)
        except OSError as err:
            log.error("cannot serve on %s: %s", settings.web_listen_address, err.strerror or err)
            return 1
    return 0


def _targets(settings: Settings) -> dict[str, Settings]:
    """The targets file's targets, or the one project of the flags (named by its id)."""
    if settings.config_file:
        return load_config(settings.config_file, settings)
    return {settings.project_id: settings}


def _my_shard(settings: Settings, targets: dict[str, Settings]) -> dict[str, Settings]:
    """This replica's share of the targets file (all of it without --config.shard); said
    in the log at start-up. A shard the file gives no target serves nothing and is ready:
    the other shards hold the targets."""
    shard = settings.shard
    if shard is None:
        return targets
    mine = shard.select(targets)
    if mine:
        log.info(
            "shard %s takes %d of the %d targets: %s",
            shard,
            len(mine),
            len(targets),
            ",".join(mine),
        )
    else:
        log.warning(
            "shard %s takes none of the %d targets: it serves no project until a reload "
            "gives it one (the other shards hold them)",
            shard,
            len(targets),
        )
    return mine


def reloaded_targets(settings: Settings, running: TargetSet) -> dict[str, Settings]:
    """The targets file read again, and this replica's share of it: the same shard as at
    start-up. Raises ConfigError."""
    loaded = load_config(settings.config_file, settings)
    shard = settings.shard
    if shard is None:
        return loaded
    mine = shard.select(loaded)
    if not mine and running.names():  # said once, when the shard loses its last target
        log.warning("shard %s takes none of the %d targets after the reload", shard, len(loaded))
    return mine


def _with_project_ids(settings: Settings, targets: dict[str, Settings]) -> dict[str, Settings]:
    """Targets without a project id get their region's, looked up in IAM (once per
    process); the project of the flags is named by its id. Raises ProjectLookupError, or
    ConfigError when two targets turn out to be one project."""
    resolved = resolve_projects(targets)
    if settings.config_file:
        check_unique_projects(settings.config_file, resolved)
        return resolved
    return {target.project_id: target for target in resolved.values()}


def _check_config(settings: Settings) -> int:
    if not settings.config_file:
        raise SettingsError("config_file", "is required with --config.check")
    try:
        targets = load_config(settings.config_file, settings)
    except ConfigError as err:
        print(f"{err.path}: {len(err.problems)} problem(s)", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(f"{settings.config_file}: OK, {len(targets)} target(s): {', '.join(targets)}")
    shard = settings.shard
    if shard is not None:
        mine = shard.select(targets)
        taken = f"{len(mine)} target(s): {', '.join(mine)}" if mine else "no target"
        print(f"shard {shard} takes {taken}")
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
            "auth_mode": "aksk",
            "ak": SecretStr(DEMO_AK),
            "sk": SecretStr(DEMO_SK),
            "security_token": None,
        }
    )


def serve(
    settings: Settings,
    targets: TargetSet,
    web_config: WebConfig | None = None,
    tls: ssl.SSLContext | None = None,
) -> None:
    stopping = threading.Event()
    reloading = threading.Event()

    def reload() -> str | None:
        try:
            targets.replace(_with_project_ids(settings, reloaded_targets(settings, targets)))
        except (ConfigError, ProjectLookupError) as err:
            log.error("reload failed, keeping the running targets: %s", err)
            return str(err)
        return None

    app = MetricsApp(
        targets,
        telemetry_path=settings.web_telemetry_path,
        description=f"Targets: {', '.join(targets.names()) or 'none in this shard'}.",
        reload=reload if settings.config_file else None,
        lifecycle=settings.web_enable_lifecycle,
    )
    host, port = parse_listen_address(settings.web_listen_address)
    limits = Limits(
        read_timeout=settings.web_read_timeout,
        max_connections=settings.web_max_connections,
        max_requests=settings.web_max_requests,
    )
    server = HttpServer(app, host, port, web_config, tls, limits, on_failure=stopping.set)
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    def on_sighup(*_: object) -> None:
        reloading.set()
        stopping.set()

    if settings.config_file:
        signal.signal(signal.SIGHUP, on_sighup)
    server.start()
    log.info(
        "serving version=%s address=%s://%s:%d targets=%s basic_auth=%s lifecycle=%s",
        __version__,
        "https" if tls else "http",
        host,
        server.port,
        ",".join(targets.names()),
        bool(web_config and web_config.basic_auth_users),
        settings.web_enable_lifecycle,
    )
    # Warm the caches now, so /-/ready turns true without waiting for the first scrape.
    targets.warm_up()
    while True:
        stopping.wait()
        if not reloading.is_set():
            break
        # SIGHUP: reload outside the signal handler, then go on serving.
        reloading.clear()
        stopping.clear()
        reload()
    log.info("shutting down")
    server.stop()
    if server.failed:  # the error is logged: end with status 1 for a restart
        raise OSError("the HTTP server failed")

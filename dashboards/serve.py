"""Run the Streamlit server for `dashboards/app.py` in this process's main thread.

The effective config reaches the app script in memory (`dashboards.config.use`): Streamlit
runs the script in this process, so flags given to `policyscope up` / `policyscope dashboard`
apply to the dashboards too, and no file holds the DSN's password.

Before anything listens, `check_login` refuses what could not be safe or could not work: a
dashboard bound beyond loopback with no login configured (anyone reaching it could read every
decision and label or silence as an admin), a users file nobody could log in with, an OIDC
login whose secrets are missing.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from collector.auth import is_loopback
from core.config import ConfigError
from dashboards import config as dashboard_config
from dashboards.config import DashboardConfig, DashboardSettings
from dashboards.users import UsersFile

APP = Path(__file__).with_name("app.py")

log = logging.getLogger(__name__)


def serve(config: DashboardSettings) -> None:
    """Serve until Streamlit stops. Raises PermissionError (beyond loopback with no login)
    or ConfigError (a login configuration that cannot work) before listening."""
    from streamlit.web import bootstrap

    dashboard = config.dashboard
    flags = {"server.port": dashboard.dashboard_port,
             "server.address": dashboard.dashboard_host,
             "server.headless": True, "browser.gatherUsageStats": False}
    bootstrap.load_config_options(flag_options=flags)
    login = check_login(dashboard)
    dashboard_config.use(config)
    log.info("dashboard on http://%s:%d, login: %s", dashboard.dashboard_host,
             dashboard.dashboard_port, login)
    _route_through_app()
    prepare_process()
    idle = IdleCollector().start()
    try:
        bootstrap.run(str(APP), False, [], flags)
    finally:  # Streamlit has stopped: no page runs any more
        idle.stop()


def prepare_process() -> None:
    """What the serving process does once, before the first request: import what every page
    imports (pandas, Plotly, the queries, ...: what a page's first run would load) and move
    everything allocated so far out of the cyclic garbage collector's reach (`gc.freeze`), as
    a preforking web server does. Those objects live as long as the process; left in the
    collector's oldest generation, each of its full passes walked all of them inside whichever
    page run it fell in, a spike in that page's render time (bench/RESULTS.md, the pages
    section). The pages themselves are not run: their imports are read from their source."""
    for path in sorted((APP.parent / "pages").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [  # `from package import module`
                    f"{node.module}.{alias.name}" for alias in node.names
                    if importlib.util.find_spec(node.module).submodule_search_locations
                    and importlib.util.find_spec(f"{node.module}.{alias.name}")]
            else:
                continue
            for name in names:
                importlib.import_module(name)
    gc.collect()
    gc.freeze()


# -- the garbage collector's full passes, between page runs -----------------------------------

_runs = 0  # page runs in progress (`page_run`)
_runs_lock = threading.Lock()


@contextmanager
def page_run() -> Iterator[None]:
    """One page run (app.py wraps each in it): `IdleCollector` waits until none is in
    progress."""
    global _runs
    with _runs_lock:
        _runs += 1
    try:
        yield
    finally:
        with _runs_lock:
            _runs -= 1


def running() -> int:
    """How many page runs are in progress."""
    with _runs_lock:
        return _runs


class IdleCollector:
    """The cyclic garbage collector's full passes, moved out of page runs.

    Python starts a full pass once its middle generation has been collected `DUE` times, in
    whichever thread allocates at that moment: in this process, inside a page run, which then
    waits while every object of the process is walked. A page run leaves cycles behind (its
    script run's elements, its frames), so full passes come every few runs. Here Python starts
    none itself (the oldest generation's threshold is out of reach) and a thread runs them
    when no page is running; and after `LATEST_S` seconds in any case, so garbage never piles
    up on a server that is never idle. The younger generations are collected as before."""

    DUE = 10  # middle-generation passes before a full one: Python's default threshold
    CHECK_S = 0.2  # how often the thread looks for a moment without a page run
    LATEST_S = 30.0  # a full pass at least this often, page run or not
    NEVER = 1 << 30  # an oldest-generation threshold no count reaches

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = time.monotonic()
        self._threshold = gc.get_threshold()

    def hold(self) -> None:
        """Stop Python's own full passes (this process): they are this collector's now."""
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, self.NEVER)

    def collect_if_due(self) -> bool:
        """One full pass if one is due (the middle generation was collected `DUE` times
        since the last) and no page is running, or if `LATEST_S` has passed with any due at
        all. Returns whether it ran."""
        due = gc.get_count()[2]
        late = time.monotonic() - self._last >= self.LATEST_S
        if not due or (due < self.DUE and not late) or (running() and not late):
            return False
        gc.collect()
        self._last = time.monotonic()
        return True

    def start(self) -> IdleCollector:
        """`hold`, then check every `CHECK_S` on a daemon thread until `stop`."""
        self.hold()
        self._thread = threading.Thread(target=self._run, name="idle-gc", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.CHECK_S):
            self.collect_if_due()

    def stop(self) -> None:
        """End the thread and give Python back its own full passes (as they were)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        gc.set_threshold(*self._threshold)


def _route_through_app() -> None:
    """Make every request run `app.py`, which logs in and routes (st.navigation).

    Streamlit still has its first multipage mode: with a `pages/` directory beside the main
    script it serves `/<page>` by running `pages/<page>.py` directly -- without `app.py`, so
    without the login -- until some run of the main script has called st.navigation. The
    first request of a fresh server to `/debug` would be that run. Streamlit keeps the mode
    in a class attribute, read before every run; setting it here, before the server starts,
    leaves only the st.navigation routing. (Each page also checks its user itself:
    `auth.page_user`.)"""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


def check_login(settings: DashboardConfig) -> str:
    """How users log in, for the start-up log; raises when the dashboard must not start."""
    path = settings.dashboard_users_file
    if settings.dashboard_oidc:
        check_oidc(settings.dashboard_oidc_provider)
    if path is not None:
        accounts = UsersFile(path).load()  # UsersFileError (a ValueError) names the problem
        if not settings.dashboard_oidc and not any(a.password_hash for a in accounts.values()):
            problem = "does not exist" if not accounts and not path.exists() else \
                "holds no user with a password"
            raise ConfigError(
                f"dashboard_users_file {path} {problem}, so nobody could log in: add one with "
                f"`policyscope users add NAME --role admin --users-file {path}`")
    if settings.dashboard_oidc:
        provider = settings.dashboard_oidc_provider or "default"
        return (f"OIDC through st.login (provider {provider}), roles from "
                f"{path or 'no users file'} else {settings.dashboard_oidc_role or 'refused'}")
    if path is not None:
        if not is_loopback(settings.dashboard_host):
            log.warning("dashboard passwords cross the network in clear unless TLS is in "
                        "front (a TLS proxy, or Streamlit's server.sslCertFile)")
        return f"local users file {path} ({len(accounts)} users)"
    if is_loopback(settings.dashboard_host):
        return "none (loopback only: everyone here is the local admin)"
    if settings.dashboard_allow_unauthenticated:
        log.warning("dashboard on %s with no login (dashboard_allow_unauthenticated): "
                    "whatever is in front must authenticate", settings.dashboard_host)
        return "none (dashboard_allow_unauthenticated)"
    raise PermissionError(
        f"refusing to serve the dashboard on {settings.dashboard_host}:"
        f"{settings.dashboard_port} without a login: anyone who can reach it could read every "
        "decision and label or silence as an admin. Create a users file (`policyscope users "
        "add NAME --role admin --users-file FILE`, then set dashboard_users_file), configure "
        "OIDC (dashboard_oidc: true and [auth] in .streamlit/secrets.toml), bind to "
        "127.0.0.1, or set dashboard_allow_unauthenticated: true "
        "(POLICYSCOPE_DASHBOARD_ALLOW_UNAUTHENTICATED=true) if something in front "
        "authenticates.")


def check_oidc(provider: str | None) -> None:
    """Streamlit's own check of the [auth] secrets st.login will use, at start-up instead
    of at the first login click; its messages name keys, never values."""
    from streamlit.auth_util import is_authlib_installed, validate_auth_credentials
    from streamlit.errors import StreamlitAuthError

    if not is_authlib_installed():
        raise ConfigError("dashboard_oidc needs Authlib >= 1.3.2 for st.login: "
                          "pip install 'streamlit[auth]'")
    try:
        validate_auth_credentials(provider or "default")
    except StreamlitAuthError as exc:
        raise ConfigError(f"dashboard_oidc: {' '.join(str(exc).split())}") from exc

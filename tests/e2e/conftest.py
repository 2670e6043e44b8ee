"""Browser tests: a real `streamlit run app.py` per fixture instance, in its own process group and its own
workspace (GLASSBOX_HOME in a temporary folder), driven by headless Debian Chromium through Playwright.

- `studio` (module-scoped) is one server shared by the tests of a module, so a dataset and a trained run
  made by one test can be reused by the next; `fresh_studio` starts a new one per test (first-visit tests).
- Teardown kills the server's process group and every training worker it started (workers run in their
  own sessions, so killing the server's group does not reach them).
- `page` is a fresh browser context per test; when a test fails, a screenshot and the server log's tail are
  saved into the test's tmp dir and their paths are added to the failure report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
START_TIMEOUT_S = 120  # two shared cores: importing streamlit, torch and timm can take a while
LOG_TAIL_LINES = 80
ARTIFACTS = pytest.StashKey[Path]()

NO_BROWSER = (
    f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install -y chromium)" if not CHROMIUM.exists()
    else None
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StudioServer:
    """`python -m streamlit run app.py` on a free port with its own workspace; `url` is its root."""

    home: Path
    log_path: Path
    port: int = field(default_factory=_free_port)
    extra_args: list[str] = field(default_factory=list)  # more `streamlit run` options (a secrets file)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GLASSBOX_HOME": str(self.home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.port", str(self.port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            # colleagues edit sources while the suite runs: no watcher, no "source changed" reruns
            "--server.fileWatcherType", "none",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        """Poll /_stcore/health for `ok`, as Streamlit's own e2e suite does."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.process.returncode}; log {self.log_path}:\n"
                                   f"{self.log_tail()}")
            with contextlib.suppress(urllib.error.URLError, OSError), \
                    urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as response:
                if response.read().decode().strip() == "ok":
                    return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"streamlit not healthy after {START_TIMEOUT_S} s; log {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def worker_log_tails(self, lines: int = 40) -> str:
        """The end of each run's worker log: where a failed training run says why."""
        parts = []
        for log in sorted((self.home / "runs").glob("*/worker.log")):
            text = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            parts.append(f"\n\n--- {log.relative_to(self.home)} ---\n{text or '(empty)'}")
        return "".join(parts)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        for pid in self.worker_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # a worker leads its own session: its group id is its pid
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(timeout=10)

    def worker_pids(self) -> set[int]:
        """Live `core.worker` processes of this workspace: the pids the store recorded, plus any process
        whose command line runs core.worker with this GLASSBOX_HOME (one that died before recording its pid)."""
        candidates: set[int] = set()
        db = self.home / "glassbox.db"
        if db.exists():
            with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
                candidates |= {int(row[0]) for row in conn.execute("SELECT pid FROM runs WHERE pid IS NOT NULL")}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            if "core.worker" in (proc.info.get("cmdline") or []):
                candidates.add(proc.info["pid"])
        return {pid for pid in candidates if self._is_our_worker(pid)}

    def _is_our_worker(self, pid: int) -> bool:
        """Guards against pid reuse: only a core.worker running with this workspace is ours to kill."""
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or "core.worker" not in proc.cmdline():
                return False
            return Path(proc.environ().get("GLASSBOX_HOME", "")).resolve() == self.home.resolve()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False


@contextlib.contextmanager
def _running_studio(tmp_dir: Path, extra_args: list[str] | None = None) -> Iterator[StudioServer]:
    server = StudioServer(home=tmp_dir / "glassbox-home", log_path=tmp_dir / "streamlit.log",
                          extra_args=extra_args or [])
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    """One server for the whole module: later tests reuse what earlier ones made (a dataset, a run)."""
    with _running_studio(tmp_path_factory.mktemp("studio")) as server:
        yield server


@pytest.fixture
def fresh_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    """A server started for this test alone, so its first page view is the first since it started."""
    with _running_studio(tmp_path_factory.mktemp("fresh-studio")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if NO_BROWSER:
        pytest.skip(NO_BROWSER)
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    sync_api.expect.set_options(timeout=30_000)  # two busy cores: assertions wait for slow reruns
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)  # two busy cores: every rerun is slow
    request.node.stash[ARTIFACTS] = tmp_path
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def _show_whole_app(tab: Page) -> None:
    """Streamlit scrolls inside its main container, so a full-page screenshot is one viewport high: grow the
    viewport to the app's height first (capped) so the screenshot shows the whole page."""
    height = tab.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebarContent]')]"
        ".map(e => e.scrollHeight), 0)"
    )
    size = tab.viewport_size or {"width": 1400, "height": 1000}
    if height > size["height"]:
        tab.set_viewport_size({"width": size["width"], "height": min(int(height) + 100, 12_000)})
        tab.wait_for_timeout(500)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed test (set-up or call), while its page is still open: save a screenshot and the server
    log's tail next to the test's tmp files and name them in the report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or report.when == "teardown":
        return
    servers = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, StudioServer)]
    folder = item.stash.get(ARTIFACTS, None)
    if folder is None and servers:  # no page yet: next to the server's own log
        folder = servers[0].log_path.parent
    if folder is None:
        return
    lines = []
    tab = getattr(item, "funcargs", {}).get("page")
    if tab is not None:
        shot = folder / "failure.png"
        try:
            _show_whole_app(tab)
            tab.screenshot(path=str(shot), full_page=True, timeout=30_000)
            lines.append(f"screenshot: {shot}  (url {tab.url})")
        except Exception as exc:  # a crashed page must not hide the test's own failure
            lines.append(f"screenshot failed: {exc}")
    for server in servers:
        tail = folder / f"server-log-tail-{server.port}.txt"
        tail.write_text(server.log_tail() + server.worker_log_tails())
        lines.append(f"server log tail: {tail}  (full log {server.log_path}, workspace {server.home})")
    if lines:
        report.sections.append(("e2e artifacts", "\n".join(lines)))
        print("\n[e2e artifacts]\n" + "\n".join(lines), file=sys.stderr)

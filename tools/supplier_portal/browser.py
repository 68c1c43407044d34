"""One Chromium per worker process, a fresh browser context per run, evidence when a run fails.

A worker creates one :class:`BrowserPool` in its start-up hook and closes it in its shutdown hook. Each
supplier-website job opens a :meth:`BrowserPool.run`: a new, isolated context (its own cookies) seeded with
the account's saved session (Playwright storage state: one JSON file per account under
``DATA_DIR/browser_state``), with a Playwright trace recording. When the run ends:

* success: the session is saved for the next run and the trace is discarded;
* failure: a full-page screenshot and the trace zip go to object storage under
  ``evidence/<reference>/<attempt>/``; their keys are attached to the raised :class:`PortalError`
  (``evidence_keys``). Playwright errors that escaped the page object become :class:`PortalTimeout` /
  retryable :class:`PortalError` here.

Chromium is Debian's (``/usr/bin/chromium``), never a downloaded build, started headless with
:data:`DEFAULT_ARGS`. Page objects pace their actions with :class:`Pacing` (short random pauses, like a
person; ``Pacing.off()`` in tests) and wait for explicit conditions, never for fixed times.

About 440 lines, on purpose: the pool, a run's lifecycle and the evidence it leaves on failure share one
Chromium and one trace per run; splitting them would pass the same half-open browser state across modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from core.domain import Line
from tools.storage import ObjectStorage, evidence_key, key_part
from tools.supplier_portal.base import (
    OrderLine,
    PortalError,
    PortalLoginFailed,
    PortalResult,
    PortalTimeout,
    SupplierPortal,
)

if TYPE_CHECKING:
    from core.config import Settings

logger = logging.getLogger(__name__)

#: Debian's Chromium (``apt-get install chromium``); Playwright's own downloads are not used.
DEFAULT_EXECUTABLE = "/usr/bin/chromium"
#: Flags for a server: no sandbox (containers, root), no background traffic (offline machines), no GPU.
DEFAULT_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
)


@dataclass(frozen=True, slots=True)
class Pacing:
    """Short random pauses before each user action (typing, clicking), so the site sees a person's rhythm.

    Attributes:
        min_seconds: shortest pause, in seconds.
        max_seconds: longest pause, in seconds; 0 turns pacing off.
    """

    min_seconds: float = 0.15
    max_seconds: float = 0.6

    def __post_init__(self) -> None:
        if not 0 <= self.min_seconds <= self.max_seconds <= 10:
            raise ValueError("Pacing needs 0 <= min_seconds <= max_seconds <= 10")

    @classmethod
    def off(cls) -> Pacing:
        """No pauses (tests, benchmarks of the site itself)."""
        return cls(0.0, 0.0)

    async def pause(self) -> None:
        """Wait a random time within the bounds (returns at once when pacing is off)."""
        if self.max_seconds > 0:
            await asyncio.sleep(random.uniform(self.min_seconds, self.max_seconds))


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Upper bounds of explicit waits, in milliseconds (generous: supplier sites can be slow).

    Attributes:
        action_ms: an element to appear / be actionable.
        navigation_ms: a page to load after a click or a ``goto``.
        challenge_ms: a bot-protection page to let the browser through.
    """

    action_ms: float = 15_000
    navigation_ms: float = 30_000
    challenge_ms: float = 20_000


@dataclass(slots=True)
class BrowserRun:
    """One browser context for one job attempt: its page, settings and evidence.

    Attributes:
        page: the tab to drive.
        context: its browser context (cookies, tracing).
        account_key: whose saved session seeded the context.
        reference: what the run is about (our PO reference), used in evidence keys.
        attempt: attempt number, used in evidence keys.
        pacing: pauses the page object should make.
        timeouts: waits the page object should allow.
        evidence_keys: keys uploaded when the run ended (filled in after the ``async with`` block).
    """

    page: Page
    context: BrowserContext
    account_key: str
    reference: str
    attempt: int
    pacing: Pacing
    timeouts: Timeouts
    evidence_keys: list[str] = field(default_factory=list)
    keep_reason: str | None = None
    tracing: bool = False

    def keep_evidence(self, reason: str) -> None:
        """Upload the screenshot and trace even if the run ends without an exception (e.g. a recovery)."""
        self.keep_reason = reason


class BrowserPool:
    """Starts Chromium once (lazily) and hands out fresh contexts, at most ``max_contexts`` at a time.

    Args:
        state_dir: folder of the saved sessions (one storage-state JSON per account; created if missing).
        storage: where failure evidence goes; ``None`` keeps no evidence.
        executable_path: the Chromium binary.
        args: Chromium command-line flags.
        headless: run without a display.
        max_contexts: contexts open at once; more runs wait (Chromium uses ~100 MB per busy context).
        pacing: pauses between user actions, handed to page objects.
        timeouts: explicit wait limits, handed to page objects and set as context defaults.
        trace: record a Playwright trace per run (screenshots and DOM snapshots).
        context_options: extra ``browser.new_context`` options (locale, user agent, viewport...).
    """

    def __init__(
        self,
        *,
        state_dir: str | Path,
        storage: ObjectStorage | None = None,
        executable_path: str = DEFAULT_EXECUTABLE,
        args: Sequence[str] = DEFAULT_ARGS,
        headless: bool = True,
        max_contexts: int = 4,
        pacing: Pacing | None = None,
        timeouts: Timeouts | None = None,
        trace: bool = True,
        context_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_contexts < 1:
            raise ValueError("max_contexts must be >= 1")
        self.state_dir = Path(state_dir)
        self.storage = storage
        self.executable_path = executable_path
        self.args = tuple(args)
        self.headless = headless
        self.pacing = Pacing() if pacing is None else pacing
        self.timeouts = Timeouts() if timeouts is None else timeouts
        self.trace = trace
        self.context_options: dict[str, Any] = {
            "locale": "en-US",
            "viewport": {"width": 1280, "height": 900},
            **(context_options or {}),
        }
        self._slots = asyncio.Semaphore(max_contexts)
        self._start_lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.launches = 0

    @classmethod
    def from_settings(cls, settings: Settings, storage: ObjectStorage | None = None, **options: Any) -> BrowserPool:
        """A pool with sessions under ``DATA_DIR/browser_state`` and evidence in ``storage``.

        Args:
            settings: process settings.
            storage: evidence store; default :meth:`ObjectStorage.from_settings`.
            **options: other constructor arguments (``max_contexts``, ``pacing``...).
        """
        if storage is None:
            storage = ObjectStorage.from_settings(settings)
        return cls(state_dir=Path(settings.DATA_DIR) / "browser_state", storage=storage, **options)

    async def __aenter__(self) -> BrowserPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def browser(self) -> Browser | None:
        """The running browser, if started."""
        return self._browser

    async def start(self) -> Browser:
        """Launch Chromium unless it is running (again after a crash); idempotent, safe to call concurrently.

        Raises:
            playwright.async_api.Error: Chromium could not be started (missing binary, no memory).
        """
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable_path, headless=self.headless, args=list(self.args)
            )
            self.launches += 1
            logger.info("chromium started (%s, launch #%d)", self._browser.version, self.launches)
            return self._browser

    async def close(self) -> None:
        """Close Chromium and the Playwright driver. The pool can be started again afterwards."""
        async with self._start_lock:
            browser, self._browser = self._browser, None
            playwright, self._playwright = self._playwright, None
            if browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await browser.close()
            if playwright is not None:
                await playwright.stop()

    # -- saved sessions ---------------------------------------------------------------------------
    def state_path(self, account_key: str) -> Path:
        """Storage-state file of an account (cookies, local storage; in clear: keep DATA_DIR private)."""
        return self.state_dir / f"{key_part(account_key)}.json"

    def _load_state(self, account_key: str) -> dict[str, Any] | None:
        path = self.state_path(account_key)
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable session file %s: %s", path, exc)
            return None
        return state if isinstance(state, dict) else None

    async def _save_state(self, run: BrowserRun) -> None:
        state = await run.context.storage_state()
        path = self.state_path(run.account_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            # The file holds session cookies: readable by the owner only. Rename makes concurrent saves safe.
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(state, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def forget_session(self, account_key: str) -> None:
        """Delete an account's saved session (after a password change, or a refused sign-in)."""
        self.state_path(account_key).unlink(missing_ok=True)

    # -- runs -------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def run(
        self, *, account_key: str, reference: str, attempt: int = 1, reuse_session: bool = True
    ) -> AsyncIterator[BrowserRun]:
        """Open a fresh context for one job attempt.

        Args:
            account_key: identity of the site account (``TONERWEB:buyer@acme.test``); its saved session is
                loaded, and saved again when the run ends (unless the sign-in was refused).
            reference: what the run is about, for evidence keys (our PO reference).
            attempt: attempt number, for evidence keys.
            reuse_session: start from the saved session (False: a clean browser, as on first use).

        Yields:
            The run; drive ``run.page``.

        Raises:
            PortalError: whatever the body raised, with ``evidence_keys`` set; Playwright timeouts become
                :class:`PortalTimeout`, other Playwright errors a retryable :class:`PortalError`.
        """
        async with self._slots:
            browser = await self.start()
            state = self._load_state(account_key) if reuse_session else None
            context = await browser.new_context(storage_state=state, **self.context_options)  # type: ignore[arg-type]
            try:
                context.set_default_timeout(self.timeouts.action_ms)
                context.set_default_navigation_timeout(self.timeouts.navigation_ms)
                page = await context.new_page()
                run = BrowserRun(page, context, account_key, reference, attempt, self.pacing, self.timeouts)
                if self.trace:
                    await context.tracing.start(
                        screenshots=True, snapshots=True, title=f"{reference} attempt {attempt}"
                    )
                    run.tracing = True
                try:
                    yield run
                except Exception as exc:
                    error = _as_portal_error(exc)
                    run.evidence_keys = await self._collect_evidence(run)
                    if error is not None:
                        error.evidence_keys.extend(run.evidence_keys)
                    else:
                        exc.add_note(f"evidence: {', '.join(run.evidence_keys) or 'none'}")
                    if isinstance(exc, PortalLoginFailed):
                        self.forget_session(account_key)
                    else:
                        await self._save_state_quietly(run)
                    if error is not None and error is not exc:
                        raise error from exc
                    raise
                else:
                    if run.keep_reason is not None:
                        logger.info("keeping evidence of %s: %s", reference, run.keep_reason)
                        run.evidence_keys = await self._collect_evidence(run)
                    elif run.tracing:
                        await context.tracing.stop()  # no path: the trace is discarded
                        run.tracing = False
                    await self._save_state_quietly(run)
            finally:
                with contextlib.suppress(PlaywrightError):
                    await context.close()

    async def _save_state_quietly(self, run: BrowserRun) -> None:
        try:
            await self._save_state(run)
        except (PlaywrightError, OSError) as exc:
            logger.warning("could not save the session of %s: %s", run.account_key, exc)

    async def _collect_evidence(self, run: BrowserRun) -> list[str]:
        """Upload a full-page screenshot and the trace zip; returns the keys that made it (never raises)."""
        keys: list[str] = []
        screenshot: bytes | None = None
        trace: bytes | None = None
        try:
            screenshot = await run.page.screenshot(full_page=True, timeout=10_000)
        except PlaywrightError as exc:
            logger.warning("no screenshot for %s: %s", run.reference, exc)
        if run.tracing:
            run.tracing = False
            try:
                with tempfile.TemporaryDirectory(prefix="trace-") as tmp:
                    path = Path(tmp) / "trace.zip"
                    await run.context.tracing.stop(path=path)
                    trace = path.read_bytes()
            except (PlaywrightError, OSError) as exc:
                logger.warning("no trace for %s: %s", run.reference, exc)
        if self.storage is None:
            return keys
        for name, data, content_type in (
            ("screenshot.png", screenshot, "image/png"),
            ("trace.zip", trace, "application/zip"),
        ):
            if data is None:
                continue
            key = evidence_key(run.reference, run.attempt, name)
            try:
                keys.append(await self.storage.aput(key, data, content_type))
            except Exception as exc:  # evidence must never hide the failure it documents
                logger.warning("could not upload %s: %s", key, exc)
        return keys


def _as_portal_error(exc: Exception) -> PortalError | None:
    """The :class:`PortalError` to report for ``exc`` (itself, or a translation of a Playwright error)."""
    if isinstance(exc, PortalError):
        return exc
    if isinstance(exc, PlaywrightTimeoutError):
        return PortalTimeout(f"browser wait timed out: {exc.message}")
    if isinstance(exc, PlaywrightError):
        return PortalError(f"browser error: {exc.message}", retryable=True)
    return None


async def place_order_in_browser(
    pool: BrowserPool,
    make_portal: Callable[[BrowserRun], SupplierPortal],
    po_reference: str,
    lines: Sequence[OrderLine | Line],
    *,
    account_key: str,
    attempt: int = 1,
    reuse_session: bool = True,
) -> PortalResult:
    """Place an order on a supplier website in one browser run, with evidence on failure.

    Args:
        pool: the worker's browser pool.
        make_portal: builds the site's page object on the run (e.g. ``lambda run: SandboxShopPortal.for_run(
            run, base_url=..., account=...)``).
        po_reference: our PO number.
        lines: what to order.
        account_key: the site account (for its saved session); use the portal's ``lock_key``.
        attempt: the job's attempt number (evidence keys).
        reuse_session: start from the saved session.

    Returns:
        The result; a ``recovered`` result carries the evidence of the failure it recovered from.

    Raises:
        PortalError: see :meth:`SupplierPortal.place_order`; ``evidence_keys`` hold the screenshot and trace.
    """
    async with pool.run(
        account_key=account_key, reference=po_reference, attempt=attempt, reuse_session=reuse_session
    ) as run:
        result = await make_portal(run).place_order(po_reference, lines)
        if result.status == "recovered":
            run.keep_evidence("the checkout failed after the site recorded the order")
    return replace(result, evidence_keys=tuple(run.evidence_keys))


__all__ = [
    "DEFAULT_ARGS",
    "DEFAULT_EXECUTABLE",
    "BrowserPool",
    "BrowserRun",
    "Pacing",
    "Timeouts",
    "place_order_in_browser",
]

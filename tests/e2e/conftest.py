"""Fixtures for the page tests: one headless Chromium per session, real engines as subprocesses.

Run with ``pytest -m e2e tests/e2e`` (or ``nox -s e2e``). Chromium is the Debian package at
/usr/bin/chromium (scripts/bootstrap); the tests never download a browser. Set
E2E_ENGINE to run the page against another engine command (default
``python -m phase4_trio``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pagekit import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DOCS,
    TONE_HZ,
    Docs,
    Engine,
    free_port,
    hooked_context,
    open_page,
)
from playwright.sync_api import Browser, Page, sync_playwright


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--write-docs",
        action="store_true",
        help="write the screenshots to docs/img and the draw-time table to docs/page.md",
    )


@pytest.fixture(scope="session")
def docs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Docs:
    """docs/ with --write-docs (nox -s docs), otherwise a temporary copy of its layout."""
    if request.config.getoption("--write-docs"):
        return Docs(DOCS)
    return Docs(tmp_path_factory.mktemp("docs"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (scripts/bootstrap installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def engines() -> Iterator[Callable[..., Engine]]:
    """start(source, port=None) -> a running engine; every one is stopped at the end."""
    started: list[Engine] = []

    def start(source: str, port: int | None = None) -> Engine:
        engine = Engine(source, port or free_port()).start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


@pytest.fixture(scope="module")
def tone_engine(engines: Callable[..., Engine]) -> Iterator[Engine]:
    """A full-scale-ish tone (amplitude 0.5) centred on bin 16."""
    engine = engines(f"tone:{TONE_HZ}:0.5")
    yield engine
    engine.stop()


class PageErrors(list[str]):
    pass


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (own localStorage) and page; fails the test on page errors."""
    context = hooked_context(browser, viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    errors = PageErrors()
    pg.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))

    def on_console(message: Any) -> None:
        # a refused / dropped WebSocket is logged by Chromium itself; the page handles it
        if message.type == "error" and not message.text.startswith("WebSocket connection to"):
            errors.append(f"console.error: {message.text}")

    pg.on("console", on_console)
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert not errors, "\n".join(errors)


@pytest.fixture
def open_engine_page(page: Page) -> Callable[..., Page]:
    def go(engine: Engine, query: str = "") -> Page:
        return open_page(page, engine, query)

    return go

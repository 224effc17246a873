"""Developer tasks. ``nox -s lint typecheck tests e2e`` is what CI runs (see README)."""

from __future__ import annotations

import subprocess

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "e2e"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, integration and real-device tests (PulseAudio null sink), not the browser ones."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "not e2e", *session.posargs)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The page in real headless Chromium (/usr/bin/chromium, installed by scripts/bootstrap)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "e2e", "tests/e2e", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.17,<0.18")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test,dev]")
    session.run("mypy", "--strict", "phase4_trio")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The performance suite beside its floor, its peer (cava on the virtual device) and the
    NATS topology; writes docs/performance.md with this machine's figures."""
    session.install("-e", ".")
    session.run("bash", "scripts/bench-setup", external=True)
    env = subprocess.run(
        ["bash", "scripts/nats-cluster", "env"], capture_output=True, text=True, check=True
    ).stdout
    urls = env.split("NATS_URL=", 1)[1].strip().strip("'")
    session.run(
        "phase4", "bench", "--nats", urls, "--write-doc", "docs/performance.md", *session.posargs
    )

"""Developer tasks. ``nox -s lint typecheck tests e2e`` is what CI runs (see README).

``tests`` and ``e2e`` check that the run left the working tree as it found it: a test never
rewrites a tracked file (regenerating docs/ is ``nox -s docs``, on purpose).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "e2e"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
ROOT = Path(__file__).parent


def tree_state() -> dict[str, str] | None:
    """Every path ``git status`` reports (changed or untracked), with a hash of its content;
    None outside a git checkout."""
    try:
        listing = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    state = {}
    fields = iter(listing.decode().split("\0"))
    for entry in fields:
        if not entry:
            continue
        if entry[0] in "RC":  # a rename or copy: the original path follows as its own field
            next(fields, None)
        path = ROOT / entry[3:]
        content = path.read_bytes() if path.is_file() else b""
        state[entry] = hashlib.sha256(content).hexdigest()
    return state


def run_leaving_the_tree_alone(session: nox.Session, *args: str) -> None:
    before = tree_state()
    session.run(*args)
    after = tree_state()
    if before is None or after is None:
        session.log("not a git checkout: cannot check that the tests left the tree alone")
        return
    changed = sorted(set(before.items()) ^ set(after.items()))
    if changed:
        paths = sorted({entry[3:] for entry, _ in changed})
        session.error(f"the tests changed the working tree: {', '.join(paths)}")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, integration and real-device tests (PulseAudio null sink), not the browser ones."""
    session.install("-e", ".[test]")
    run_leaving_the_tree_alone(session, "pytest", "-m", "not e2e", *session.posargs)


@nox.session(python=PYTHON)
def e2e(session: nox.Session) -> None:
    """The page in real headless Chromium (/usr/bin/chromium, installed by scripts/bootstrap)."""
    session.install("-e", ".[test]")
    run_leaving_the_tree_alone(session, "pytest", "-m", "e2e", "tests/e2e", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate docs/img/*.png and the draw-time table in docs/page.md from the page tests."""
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "e2e", "tests/e2e", "--write-docs", *session.posargs)


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

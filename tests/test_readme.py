"""The README runs: every sh and python block, in order, against a live `ingest up` and a local news site.

Conventions (README.md, "Development"): an HTML comment on the line(s) just above a block steers it.

    <!-- readme-test: skip (why) -->     illustrative only: not run
    <!-- readme-test: expect TEXT -->    the block's output must contain TEXT
    <!-- readme-test: stopped -->        run with the service stopped; it is started again afterwards

`https://example.org` in a block stands for the local site served here, `127.0.0.1:8000` for the
API port of the service under test. Blocks run in a shell where the venv is not active; once a block
activates it (`. .venv/bin/activate`), the following blocks run activated, as in one terminal.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ingest.embedded import free_port
from tests.httpsite import Site

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIXTURES = Path(__file__).parent / "fixtures"
VENV_BIN = Path(sys.executable).parent
RUN_LANGS = {"sh", "bash", "shell", "python"}
DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(skip|expect|stopped)\b\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    """A fenced block of the README and what its comments ask."""

    line: int
    lang: str
    code: str
    skip: bool = False
    stopped: bool = False
    expect: list[str] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the directives just above it."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m[1].lower()
        end = start + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        block = Block(start + 1, lang, "\n".join(lines[start + 1 : end]) + "\n")
        j = start - 1
        while j >= 0 and (d := DIRECTIVE.match(lines[j])):
            if d[1] == "skip":
                block.skip = True
            elif d[1] == "stopped":
                block.stopped = True
            else:
                block.expect.append(d[2])
            j -= 1
        found.append(block)
        i = end + 1
    return found


def test_the_block_parser_reads_the_directives() -> None:
    text = (
        "<!-- readme-test: skip (docker) -->\n```sh\ndocker ps\n```\n\n"
        "<!-- readme-test: expect a b -->\n<!-- readme-test: expect c -->\n```python\nprint(1)\n```\n"
        "```json\n{}\n```\n"
    )
    got = blocks(text)
    assert [(b.lang, b.skip, sorted(b.expect)) for b in got] == [
        ("sh", True, []),
        ("python", False, ["a b", "c"]),
        ("json", False, []),
    ]


def test_every_directive_in_the_readme_is_well_formed() -> None:
    for n, line in enumerate(README.read_text().splitlines(), 1):
        if line.lstrip().startswith("<!--") and "readme-test" in line:
            assert DIRECTIVE.match(line), f"README.md:{n}: malformed directive {line!r}"


# ---- the local news site that stands in for https://example.org ----


def page(title: str, paragraphs: list[str], published: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta property="article:published_time" content="{published}T08:00:00+00:00"></head>'
        f"<body><nav><a href='/'>Home</a></nav><main><article><h1>{html.escape(title)}</h1>{body}"
        "</article></main><footer>All rights reserved.</footer></body></html>"
    )


def news_site() -> Site:
    """A feed of three articles (one on the storyline) and a syndicated copy of the storyline one."""
    site = Site()
    energy = json.loads((FIXTURES / "site" / "energy_pause.json").read_text())
    others = json.loads((FIXTURES / "dedup" / "articles.json").read_text())
    articles = {
        "/world/2025/03/18/putin-pause": (energy["title"], energy["paragraphs"], energy["published"]),
        "/world/2025/03/24/rail-strike": (
            others["rail_strike"]["title"],
            others["rail_strike"]["paragraphs"],
            "2025-03-24",
        ),
        "/world/2025/03/21/observatory": (
            others["observatory"]["title"],
            others["observatory"]["paragraphs"],
            "2025-03-21",
        ),
    }
    for path, (title, paragraphs, published) in articles.items():
        site.add(path, page(title, paragraphs, published))
    # the same report under another address, as a syndication partner publishes it
    site.add(
        "/2025/03/18/putin-energy-pause",
        page(f"{energy['title']} (wire)", energy["paragraphs"], energy["published"]),
    )
    items = "".join(
        f"<item><title>{html.escape(t)}</title><link>{site.url(p)}</link><guid>{site.url(p)}</guid></item>"
        for p, (t, _, _) in articles.items()
    )
    site.add(
        "/world/rss.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>World</title>{items}</channel></rss>',
        content_type="application/rss+xml",
    )
    return site


# ---- the service, as `make run` starts it, in a scratch copy of the checkout ----


def clean_env() -> dict[str, str]:
    """A new terminal: no project settings, and the venv not active."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_") and k not in ("REDIS_URL", "VIRTUAL_ENV")}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != VENV_BIN.resolve()]
    env["PATH"] = os.pathsep.join(path or ["/usr/local/bin", "/usr/bin", "/bin"])
    # The local site is on 127.0.0.1, which the service refuses to fetch unless told; no politeness wait.
    env.update({"INGEST_ALLOW_PRIVATE_NETWORKS": "1", "INGEST_HOST_DELAY": "0", "PYTHONUNBUFFERED": "1"})
    return env


class Service:
    """`ingest up` in a folder, started and stopped as a person does (Ctrl-C)."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout
        self.api_port = free_port()
        self.redis_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = checkout / "up.log"

    def start(self) -> None:
        env = clean_env() | {"INGEST_API_PORT": str(self.api_port), "INGEST_REDIS_PORT": str(self.redis_port)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(self.checkout / ".venv" / "bin" / "ingest"), "up", "--concurrency", "1"],
                cwd=self.checkout,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{self.api_port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the service never answered /healthz:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh-looking checkout: the project's files, its venv, no data folder yet."""
    folder = tmp_path_factory.mktemp("checkout")
    for entry in ROOT.iterdir():
        if entry.name not in {"var", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}:
            (folder / entry.name).symlink_to(entry)
    (folder / "notebooks").mkdir()  # a subfolder of the user's own
    return folder


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = news_site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def service(checkout: Path, site: Site) -> Iterator[Service]:
    svc = Service(checkout)
    svc.start()
    yield svc
    svc.stop()


def run_block(block: Block, checkout: Path, site: Site, svc: Service, activated: bool) -> str:
    code = block.code.replace("https://example.org", site.base).replace("127.0.0.1:8000", f"127.0.0.1:{svc.api_port}")
    env = clean_env()
    if block.lang == "python":
        script = checkout / f"readme_block_{block.line}.py"
        script.write_text(code)
        argv = [str(checkout / ".venv" / "bin" / "python"), str(script)]
    else:
        prelude = ". .venv/bin/activate\n" if activated else ""
        argv = ["bash", "-e", "-o", "pipefail", "-c", prelude + code]
    cp = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    out = cp.stdout + cp.stderr
    where = (
        f"README.md:{block.line} ({block.lang} block) exited {cp.returncode}:\n{code}\n--- output ---\n{out[-4000:]}"
    )
    assert cp.returncode == 0, where
    assert "Traceback" not in out, where
    for text in block.expect:
        assert text in out, f"README.md:{block.line}: expected {text!r} in the output\n{out[-4000:]}"
    return out


def test_every_readme_block_runs_against_a_live_service(checkout: Path, site: Site, service: Service) -> None:
    runnable = [b for b in blocks(README.read_text()) if b.lang in RUN_LANGS]
    assert len([b for b in runnable if not b.skip]) >= 5
    activated = False
    for block in runnable:
        if block.skip:
            continue
        if block.stopped:
            service.stop()
            run_block(block, checkout, site, service, activated)
            service.start()
            # a restart shows every earlier item
            cp = subprocess.run(
                [str(checkout / ".venv" / "bin" / "ingest"), "items", "--stream", "storyline:energy-ceasefire"],
                cwd=checkout,
                env=clean_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "Putin" in cp.stdout, cp.stdout + cp.stderr
        else:
            run_block(block, checkout, site, service, activated)
        activated = activated or ".venv/bin/activate" in block.code


def test_commands_work_with_or_without_the_venv_from_the_root_or_a_subfolder(checkout: Path, service: Service) -> None:
    sub = checkout / "notebooks"
    plain = [
        (checkout, "command -v ingest >/dev/null && exit 3; .venv/bin/ingest redis-url"),
        (sub, "command -v ingest >/dev/null && exit 3; ../.venv/bin/ingest stats"),
        (checkout, ". .venv/bin/activate && ingest stats"),
        (sub, '. ../.venv/bin/activate && ingest redis-url && redis-cli -u "$(ingest redis-url)" PING'),
        (
            sub,
            ". ../.venv/bin/activate && python -c 'from ingest.consumer import Consumer; print(Consumer(\"x\"))'",
        ),
    ]
    for cwd, command in plain:
        cp = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60
        )
        assert cp.returncode == 0, f"{command} in {cwd}: {cp.stdout}{cp.stderr}"
        assert "Traceback" not in cp.stderr
    assert (
        f"127.0.0.1:{service.redis_port}"
        in subprocess.run(
            ["bash", "-c", "../.venv/bin/ingest redis-url"], cwd=sub, env=clean_env(), capture_output=True, text=True
        ).stdout
    )

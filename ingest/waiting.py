"""Waiting for a run where a person can see it: live progress on a terminal, a warning when no worker runs.

On a terminal (stderr is a TTY and the output is not JSON) a `rich` progress line shows jobs done
out of known, by outcome, feeds polled and time elapsed. Elsewhere (pipes, --json) nothing is drawn;
the warning that no worker is alive is printed either way, once, on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from ingest import heartbeat
from ingest.jobs import Jobs, RunCounts, RunProgress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

NO_WORKER_GRACE = 5.0  # seconds: a worker started with the command has this long to say it is alive
CHECK_WORKERS_EVERY = 1.0

NO_WORKER = (
    "no worker is alive: the run waits until one starts (`ingest worker`, or `ingest up` for everything); "
    "Ctrl-C stops waiting, not the run"
)


def interactive(json_output: bool) -> bool:
    """Whether to draw progress: stderr is a terminal and the output is for a person."""
    return not json_output and sys.stderr.isatty()


class _Watch:
    """Called after every wake-up of the wait: draws progress, checks for workers."""

    def __init__(self, client: redis.Redis, progress: Progress | None, task: TaskID | None) -> None:
        self.client = client
        self.progress = progress
        self.task = task
        self.started = time.monotonic()
        self.next_check = self.started
        self.warned = False

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, markup=False, highlight=False)
        else:
            print(f"ingest: {message}", file=sys.stderr, flush=True)

    def __call__(self, c: RunCounts) -> None:
        now = time.monotonic()
        if not c.finished and now >= self.next_check:
            self.next_check = now + CHECK_WORKERS_EVERY
            alive = heartbeat.workers_alive(self.client)
            if not alive and not self.warned and now - self.started >= NO_WORKER_GRACE:
                self.warned = True
                self.say(NO_WORKER)
            elif alive and self.warned:
                self.warned = False
                self.say(f"{len(alive)} worker(s) alive now")
        if self.progress is not None and self.task is not None:
            total = c.jobs + c.foreign_left
            parts = [f"{k}={v}" for k, v in sorted(c.outcomes.items()) if v]
            if c.already_seen:
                parts.append(f"already_seen={c.already_seen}")
            if c.feeds:
                parts.append(f"feeds {c.feeds - c.feeds_left}/{c.feeds}")
            self.progress.update(self.task, completed=c.done, total=max(total, c.done), outcomes=" ".join(parts))


def wait(
    client: redis.Redis,
    run_id: str,
    timeout: float,
    *,
    show: bool,
    also: Sequence[str] = (),
) -> RunProgress:
    """Wait for a run (and adopted runs) to end; live progress when show, a no-worker warning always."""
    jobs = Jobs(client)
    if not show:
        watch = _Watch(client, None, None)
        return jobs.wait(run_id, timeout, also=also, on_progress=watch, on_outage=watch.say)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("run {task.fields[run]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[outcomes]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("wait", total=None, run=run_id, outcomes="")
        watch = _Watch(client, progress, task)
        return jobs.wait(run_id, timeout, poll_every=0.5, also=also, on_progress=watch, on_outage=watch.say)

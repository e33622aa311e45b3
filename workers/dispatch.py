"""The Celery implementation of ingest.jobs.Dispatcher: messages carry URLs and ids, never HTML."""

from __future__ import annotations

from dataclasses import asdict

from celery import Celery

from ingest import keys
from ingest.models import Job


class CeleryDispatcher:
    """Sends article and feed-poll tasks by name, so callers need not import the task modules."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def send_article(self, job: Job) -> None:
        """Queue one article job."""
        self.app.send_task("ingest.process_article", args=[asdict(job)], queue=keys.QUEUE_ARTICLES)

    def send_articles(self, jobs: list[Job]) -> None:
        """Queue many article jobs over one producer (one connection) instead of one each."""
        if not jobs:
            return
        with self.app.producer_or_acquire() as producer:
            for job in jobs:
                self.app.send_task(
                    "ingest.process_article", args=[asdict(job)], queue=keys.QUEUE_ARTICLES, producer=producer
                )

    def send_feed_polls(self, feed_urls: list[str], run_id: str | None) -> None:
        """Queue polls of many feeds over one producer."""
        with self.app.producer_or_acquire() as producer:
            for url in feed_urls:
                self.app.send_task("ingest.poll_feed", args=[url, run_id], queue=keys.QUEUE_FEEDS, producer=producer)

    def send_feed_poll(self, feed_url: str, run_id: str | None) -> None:
        """Queue one poll of one feed."""
        self.app.send_task("ingest.poll_feed", args=[feed_url, run_id], queue=keys.QUEUE_FEEDS)

"""Celery side of storyline-ingest: the app, thin tasks over ingest.pipeline, the beat schedule."""

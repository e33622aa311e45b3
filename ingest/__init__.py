"""storyline-ingest: news ingestion with dedup and storyline tagging, publishing to Redis Streams."""

__version__ = "0.1.0"

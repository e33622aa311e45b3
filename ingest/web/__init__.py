"""The dashboard, Prometheus metrics and offline API docs, served by the API process.

Like miniflux's `internal/ui/`: `routes.py` maps every URL, one module per view (storyline,
article, feeds, deadletters, system), `auth.py` for the token login and CSRF, `metrics.py` for
/metrics, `indexes.py` for the Redis indexes written at publish time (imported by the worker, so
this package's `__init__` imports nothing heavy), templates and static files as package data.
"""

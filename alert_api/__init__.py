"""The alert API: stores alert events from Kafka and serves them over HTTP."""

from alert_api.main import create_app, serve

__all__ = ["create_app", "serve"]

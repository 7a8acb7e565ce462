"""suibou (水防): real-time water-hazard alerting.

This package is the small shared kernel: event contracts, settings, the local
infrastructure (Kafka broker, Prism runner) and the command line. The stage
packages (`pipelines`, `models`, `alert_api`, `replay_data`) import it; they do
not import each other except through it.
"""

__version__ = "0.1.0"

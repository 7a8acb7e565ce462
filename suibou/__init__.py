"""suibou (水防): real-time water-hazard alerting.

This package is the small shared kernel: event contracts, settings, the local
infrastructure (Kafka broker, Prism runner, alert API process), drill
orchestration and the command line. Every stage package imports it. Beyond it,
`pipelines` asks `models` for a scorer by name and version and reads station
catalogues from here; `alert_api` imports nothing but this kernel.
"""

__version__ = "0.1.0"

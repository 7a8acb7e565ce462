"""HTTP routes of the alert API, one module per resource."""

"""Partner formats: CAP 1.2 XML, GeoJSON hazard areas (as the US NWS API serves them), Waze CIFS closures.

Each module turns stored messages into one format; texts in Japanese and
English come from :mod:`alert_api.formats.texts`.
"""

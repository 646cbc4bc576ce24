"""Serving: the HTTP server, TLS and basic auth of the web config."""

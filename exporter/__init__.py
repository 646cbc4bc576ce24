"""Prometheus exporter for Huawei Cloud ModelArts notebook instances."""

__version__ = "0.1.0"

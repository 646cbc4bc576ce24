"""Configuration: the settings (flags and environment), the targets file, series options."""

"""The ModelArts API: its records, statuses, errors, credentials and the list client."""

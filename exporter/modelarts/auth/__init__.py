"""Credentials for ModelArts requests: one provider per kind, and the AK/SK signer."""

"""Loopback fakes of vendor APIs, kept honest by the official SDKs in the tests."""

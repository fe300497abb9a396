"""Tests of the probe check types against a real nginx and a local DNS server."""

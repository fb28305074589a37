"""Shared fixtures for the voxflow test suite."""

"""Principals, roles, masking of personal data."""

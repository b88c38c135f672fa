"""Yilian (医联): one platform for a tiered, integrated health network."""

__version__ = "0.1.0"

"""Backends: each is an ordered stage table (stage name = file extension) plus a runner."""

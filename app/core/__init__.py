"""The bottom layer: errors, settings, clock, logs, metrics, sizes, rate limits.

Imports nothing else of the service; every other layer may import it.
"""

"""Clients of the outside APIs (Real Geeks, ElevenLabs): one HTTP exchange, retries as data."""

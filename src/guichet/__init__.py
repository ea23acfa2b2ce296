"""Guichet: citizen services that keep working through an IT incident."""

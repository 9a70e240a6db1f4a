"""Private helpers shared by the rest of the package. Nothing here is supported API: names,
signatures and modules change without notice (docs/python-api.md lists what is supported)."""

"""Performance benchmarks of the IPCGAN port: ``python -m benchmarks`` (see docs/BENCHMARKS.md)."""

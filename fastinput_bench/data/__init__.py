"""Data generators for the benchmarks (written once into a cache folder, then reused)."""

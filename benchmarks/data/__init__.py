"""Data files shipped with the benchmarks (installed as package data)."""

"""The Netlib LP test set, stored sparse; see README.md here and :mod:`benchmarks.netlib_data`."""

"""Sufficient dimension reduction estimators and the reduction of LPs by projection."""

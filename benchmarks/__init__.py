"""Benchmarks of gluon_resnet (``python -m benchmarks.run --help``); not installed with the package."""

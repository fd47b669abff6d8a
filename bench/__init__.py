"""Benchmarks (not tests), run from the repository root.

``python -m bench`` runs the client comparison (see ``bench/README.md``);
``python -m bench.threads`` compares threads sharing one connection with one
thread multiplexing the same requests.
"""

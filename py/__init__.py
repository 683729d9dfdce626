"""The model library's Python package.

Imported relatively only: pytest ships a top-level module named ``py``.
"""

"""The package's version, in a leaf module: reading it imports nothing else of amsnet.

``pyproject.toml`` takes its version from here (``[tool.setuptools.dynamic]``).
"""

__version__ = "0.1.0"

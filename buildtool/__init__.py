"""buildtool: a declarative build system for ML base images."""

__version__ = "0.1.0"

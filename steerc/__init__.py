"""steerc: a declarative steering compiler for language models."""

__version__ = "0.1.0"

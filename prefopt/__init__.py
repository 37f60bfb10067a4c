"""prefopt: a benchmark suite for direct preference optimisation (DPO and its family)."""

__version__ = "0.1.0"

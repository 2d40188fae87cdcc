"""bianjie (便捷): serverless patient services for Shanghai city hospitals."""

__version__ = "0.1.0"

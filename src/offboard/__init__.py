"""Offboard: client offboarding for B2B service businesses, with proof."""

__version__ = "0.1.0"

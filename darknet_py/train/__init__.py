"""Training: Darknet's learning-rate schedule, update rule and (later) the loop."""
from .schedule import current_rate

__all__ = ["current_rate"]

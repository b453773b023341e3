"""Training-side helpers: smoothing predicted activities, cycles, and evaluation metrics."""

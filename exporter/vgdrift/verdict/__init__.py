"""From observations to a verdict: per-PV views, then cache versus disk."""

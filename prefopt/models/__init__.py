"""Model-side helpers: loading policies and references, log-probs, sampling."""

"""The math of the RLHF baselines: KL-penalised rewards, advantages, policy and value losses, and
the KL coefficient's controllers (pure tensor functions and small stateful objects)."""

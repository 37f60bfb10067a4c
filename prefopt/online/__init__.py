"""Online algorithms: batches sampled from the policy being trained (online DPO, RLOO)."""

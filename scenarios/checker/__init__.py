"""The checker: a history against the key-store model (scenarios/model/): static checks, the C
fast path, the streaming per-key linearizability search, the final state, and coverage."""

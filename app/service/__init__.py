"""The child step service: one process serves one journey step for one company."""

"""One construct per feature of the workload stack (and the management stack's pieces)."""

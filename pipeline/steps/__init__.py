"""Global steps: the work after the writers that needs every part of the run. Each step reads parts,
returns what it removed by reason and by source, and rewrites through move_to_rejected; protocol runs
them in order with a resume record per step and updates the ledger in one place."""

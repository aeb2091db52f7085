"""One module per SLI family; each exposes `compute(ctx) -> frame of base.OUTPUT` and a
docstring with its formula, the events it reads and what an empty window yields."""

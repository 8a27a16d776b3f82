"""The wiring: each agent's topics, tables and batch handler, from a pure core in
`resontinex.agents` to the engine (`resontinex.app.engine`) that applies its plans."""

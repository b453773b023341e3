"""Pipeline steps: each wires ports (catalog, stores, state) to pure logic.

A step receives the :class:`etl.bootstrap.Context` and returns a summary dict
that the CLI prints and the state store keeps with the step's run.
"""

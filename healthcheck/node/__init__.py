"""How checkers touch the node: one module per interface, every path and endpoint a parameter."""

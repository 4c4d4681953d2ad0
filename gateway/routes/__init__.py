"""HTTP routes, one module per capability; ``gateway.app`` assembles them."""

"""HTTP routes, one module per capability; ``gateway.web.app`` assembles them."""

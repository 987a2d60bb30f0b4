"""HTTP only: typed dependencies, error rendering, and what routers share."""

"""How a store comes to exist: a local process, a container, or a live instance from configuration."""

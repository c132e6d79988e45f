"""Renderers: turn results into what people and CI read. They never talk to a store."""

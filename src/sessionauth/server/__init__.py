"""The reference server: a FastAPI application speaking the HTTP contract of DESIGN.md."""

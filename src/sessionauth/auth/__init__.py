"""Authentication on top of sessions: passwords, users, login flows, throttling, guards."""

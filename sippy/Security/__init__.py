"""Server-side security helpers (digest nonces)."""

"""Server-side security helpers: digest nonces, values safe to put on the wire."""

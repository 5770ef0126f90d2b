"""Server-side security helpers: digest nonces and their guard, address lists, wire-safe values."""

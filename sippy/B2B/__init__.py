"""Sippy 2.x homes of the B2BUA's routing and header-transformation modules (re-exports)."""

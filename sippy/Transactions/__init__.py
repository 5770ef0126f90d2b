"""The transaction layer's parts, one job each; `sippy.SipTransactionManager` puts them together."""

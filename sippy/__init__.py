"""sippy: a SIP B2BUA on Twisted, with the classic Sippy module layout."""

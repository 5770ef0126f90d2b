"""Media relay through RTPproxy (Sippy 2.x layout): ``client`` talks the command protocol to one
proxy, ``session`` anchors one call's media on it."""

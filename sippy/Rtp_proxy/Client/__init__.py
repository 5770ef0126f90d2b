"""Transports of the RTPproxy command protocol: datagrams with cookies, stream sockets."""

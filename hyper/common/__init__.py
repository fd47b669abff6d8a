"""Leaves shared by the HTTP/2 and HTTP/1.1 clients: URLs, bodies, decoding, sockets."""

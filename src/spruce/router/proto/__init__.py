"""Sans-IO protocol code of the router: bytes in, events/values out, no sockets."""

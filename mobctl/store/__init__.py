"""The store: contracts (Protocols) and the directory backend."""

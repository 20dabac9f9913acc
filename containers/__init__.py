"""What runs inside every sidecar: the contract server, the handler contract, codecs, frameworks."""

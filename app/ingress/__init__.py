"""The webhook ingress: signature checks, bounded bodies, handlers, its own server."""

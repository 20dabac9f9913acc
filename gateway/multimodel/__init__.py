"""Multi-model hosting, the platform side: a store, a disk cache and a manager per container."""

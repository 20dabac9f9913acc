"""The declarative side of Tandem: endpoint specs and the example pipelines (pure: no I/O)."""

from pipelines.spec import ContainerSpec, EndpointSpec, SpecError, load_spec, load_specs

__all__ = ["ContainerSpec", "EndpointSpec", "SpecError", "load_spec", "load_specs"]

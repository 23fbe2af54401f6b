from genlab.config.compose import compose_config
from genlab.config.resolve import resolve_data_config
from genlab.config.validate import validate_config

__all__ = ["compose_config", "resolve_data_config", "validate_config"]

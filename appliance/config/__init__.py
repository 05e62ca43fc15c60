"""Configuration: one TOML file, frozen dataclasses per subsystem, validated once at start."""

from appliance.config.check import check_config, check_devices, check_models
from appliance.config.load import find_config, load_config, parse_config
from appliance.config.schema import (
    AgentConfig,
    AudioConfig,
    CalibrationConfig,
    Config,
    LLMConfig,
    ModelsConfig,
    STTConfig,
    TTSConfig,
    VADConfig,
    WakeConfig,
)
from appliance.config.service import (
    SERVICE_CONFIG,
    SERVICE_RUNTIME_DIR,
    SERVICE_STATE_DIR,
    LogConfig,
    MetricsConfig,
    ServiceConfig,
    user_config_path,
)
from appliance.config.write import to_toml, update_config_file

__all__ = [
    "SERVICE_CONFIG",
    "SERVICE_RUNTIME_DIR",
    "SERVICE_STATE_DIR",
    "AgentConfig",
    "AudioConfig",
    "CalibrationConfig",
    "Config",
    "LLMConfig",
    "LogConfig",
    "MetricsConfig",
    "ModelsConfig",
    "STTConfig",
    "ServiceConfig",
    "TTSConfig",
    "VADConfig",
    "WakeConfig",
    "check_config",
    "check_devices",
    "check_models",
    "find_config",
    "load_config",
    "parse_config",
    "to_toml",
    "update_config_file",
    "user_config_path",
]

"""Configuration: `mllife.toml` read and validated (pydantic), every error naming the key
and the file -- the project (data, splits, candidates), the promotion policy, operations."""

from mllife.config.project import CandidateConfig, ProjectConfig, find_config, load_config

__all__ = ["CandidateConfig", "ProjectConfig", "find_config", "load_config"]

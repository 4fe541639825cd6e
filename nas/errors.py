"""User-facing errors (shown by the CLIs as one ``error: ...`` line, exit status 2) and the YAML reader that
turns a file's problems into them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class UserError(Exception):
    """Bad input from the user (configuration, paths, flags); the message is shown as ``error: <message>``."""


class ConfigError(UserError):
    """A configuration file is invalid; the message names the file and the key."""

    def __init__(self, path: object, key: str, message: str) -> None:
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")
        self.path, self.key = path, key


def one_line(text: str) -> str:
    """Return ``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


def yaml_problem(e: Exception) -> str:
    """Return a one-line description of a YAML parse error, with its line and column when known."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else one_line(problem)


def read_yaml(path: Path) -> Any:
    """Return the parsed content of a YAML file.

    Raises:
        ConfigError: malformed YAML or not UTF-8 text (names the file, line and column).
        UserError: the file cannot be read.
    """
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(path, "", f"malformed YAML: {yaml_problem(e)}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", f"not a UTF-8 text file ({e.reason})") from e
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from e

"""Study presets shipped with the project (YAML files; see README, "Presets")."""

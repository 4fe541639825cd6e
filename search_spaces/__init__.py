"""Search spaces shipped with the project (YAML files; see README, "Search spaces")."""

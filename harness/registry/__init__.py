"""The registry: tasks/*.yaml and models.yaml, validated field by field into typed specs, and the lookups
by name, alias or local folder. May import the base modules only."""

"""The kopf operator: validate SelfHealPatch resources, sync them to the registry, reflect the registry back."""

"""selfheal: self-healing SDK patches declared as SelfHealPatch resources, synced to a registry."""

GROUP = "selfheal.molam.io"
VERSION = "v1alpha1"
PLURAL = "selfhealpatches"
KIND = "SelfHealPatch"

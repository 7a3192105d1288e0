"""The SelfHealPatch resource's names: API group, kind, annotations, finalizer, reasons' home.

Every layer names the resource through these constants, so that no module imports another
layer's code for a string.
"""

GROUP = "selfheal.molam.io"
VERSION = "v1alpha1"
PLURAL = "selfhealpatches"
KIND = "SelfHealPatch"
API_VERSION = f"{GROUP}/{VERSION}"

# The kill switch: value is the reason; the patch stays off while the annotation is there.
ANNOTATION_DISABLE = f"{GROUP}/disable"
# Reactivation: a new value each time brings the patch back once.
ANNOTATION_REACTIVATE = f"{GROUP}/reactivate"
# kopf's own bookkeeping (progress, diff base, finalizer) lives under this prefix.
KOPF_PREFIX = GROUP
FINALIZER = f"{GROUP}/registry"

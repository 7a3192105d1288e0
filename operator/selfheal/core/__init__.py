"""Pure logic: models, status, validation, the patch language, the guard, matching, signing.

No module here imports an I/O library (checked by import-linter): each reads and tests alone.
"""

"""One model per file. Importing this package registers every model (explicitly, below)."""

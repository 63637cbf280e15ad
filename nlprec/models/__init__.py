"""One model per file. Importing this package registers every model (explicitly, below)."""

from nlprec.models import word2vec  # noqa: F401

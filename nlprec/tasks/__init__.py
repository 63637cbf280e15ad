"""What a user does, one module per task, each of one shape: an options dataclass, `train(...)`
that writes a model folder, and a query object that `load(folder)` reads back."""

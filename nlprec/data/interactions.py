"""User-item interactions: reading and checking ratings files, id maps, splits, negative sampling
and the batches the recommenders train on.

Reading (`read_interactions`). CSV, TSV (also MovieLens `u.data`, read as it is) or Parquet.
The separator comes from the suffix (`.csv` comma, `.parquet`/`.pq` Parquet, anything else tab),
or from `sep=`. A header line is detected when the first line names a column (`user`, `userId`,
`item_id`, `rating`, ...) or has a non-numeric value where a rating or timestamp belongs; pass
`header=True/False` to decide. Columns are chosen by name (with a header) or by 0-based position;
defaults: the usual names when there is a header, else positions 0, 1, 2, 3 (user, item,
rating, timestamp: the `u.data` layout). Ids are kept as the user's strings; internal indices
are in order of first appearance. Every problem is one `NlprecError` line naming the file, the
line number (1-based, as an editor shows it) and the value: a missing field, a non-numeric or
non-finite rating or timestamp, a rating outside `rating_range`, a duplicate (user, item)
pair (with the line of its first occurrence), an empty file. Blank lines are skipped.

Splits (all deterministic): `split_random` (a seeded share of the rows), `split_leave_one_out`
(each user's latest interaction by timestamp; ties go to the later line; users with one
interaction stay in train) and `split_temporal` (the globally latest share of rows).

Negative sampling is vectorised: candidates are drawn for all rows at once and only the draws
that hit a seen item are redrawn, so a seen item is never returned.

Data modules for `nlprec.train.Trainer` (batches are dicts of tensors):

- `RatingsData`: `users`, `items` (B,) int64 and `ratings` (B,) float32, shuffled each epoch.
- `PairwiseData`: `users`, `pos_items`, `neg_items` (B,) int64; every training interaction
  appears `n_negatives` times per epoch, shuffled, each time with a fresh unseen item drawn
  for its batch.
- `ItemRowsData`: `items` (B,) int64, `ratings` and `mask` (B, n_users) float32 (an item's
  column of the rating matrix and where it is observed), for item-based AutoRec.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from nlprec.data.seen_pairs import SeenPairs, pair_keys
from nlprec.errors import NlprecError

Column = str | int | None
SplitName = Literal["random", "leave_one_out", "temporal", "none"]
Duplicates = Literal["error", "last"]

# Column names recognised in a header, lower-cased, in order of preference.
USER_NAMES = ("user", "user_id", "userid", "uid", "customer_id", "visitorid")
ITEM_NAMES = ("item", "item_id", "itemid", "iid", "movie", "movie_id", "movieid", "product_id", "asin", "isbn")
RATING_NAMES = ("rating", "ratings", "score", "stars", "value", "preference")
TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime", "unix_timestamp")
_PARQUET_SUFFIXES = (".parquet", ".pq")


# --- the interactions table ------------------------------------------------------------------


@dataclass
class Interactions:
    """Interactions as parallel arrays of internal indices, with the maps back to the user's ids.

    Rows keep the file order. `user_ids[u]` / `item_ids[i]` are the original id strings;
    `lines[r]` is the 1-based file line of row r (for messages; None after a split drops it).
    """

    users: np.ndarray  # (N,) int64 in [0, len(user_ids))
    items: np.ndarray  # (N,) int64 in [0, len(item_ids))
    user_ids: list[str]  # internal index -> original user id
    item_ids: list[str]  # internal index -> original item id
    ratings: np.ndarray | None = None  # (N,) float32, None for implicit data
    timestamps: np.ndarray | None = None  # (N,) float64 (seconds for datetimes), None if absent
    source: str = ""  # the file read, for messages
    lines: np.ndarray | None = field(default=None, repr=False)  # (N,) int64 file line of each row

    def __len__(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        kind = "ratings" if self.ratings is not None else "implicit interactions"
        return f"Interactions({len(self):,} {kind}, {self.n_users:,} users, {self.n_items:,} items)"

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def subset(self, rows: np.ndarray) -> "Interactions":
        """The rows selected by an index or boolean array; the id maps are shared, not renumbered."""
        pick = lambda array: None if array is None else array[rows]  # noqa: E731
        return Interactions(self.users[rows], self.items[rows], self.user_ids, self.item_ids,
                            pick(self.ratings), pick(self.timestamps), self.source, pick(self.lines))

    def concat(self, other: "Interactions") -> "Interactions":
        """These rows then `other`'s (same id maps)."""
        join = lambda a, b: None if a is None or b is None else np.concatenate([a, b])  # noqa: E731
        return Interactions(np.concatenate([self.users, other.users]), np.concatenate([self.items, other.items]),
                            self.user_ids, self.item_ids, join(self.ratings, other.ratings),
                            join(self.timestamps, other.timestamps), self.source, join(self.lines, other.lines))

    def matrix(self, values: Literal["ratings", "ones"] = "ones") -> sp.csr_matrix:
        """The (n_users, n_items) sparse matrix of ones or ratings."""
        data = self.ratings if values == "ratings" and self.ratings is not None else np.ones(len(self), np.float32)
        return sp.csr_matrix((data.astype(np.float32), (self.users, self.items)), shape=(self.n_users, self.n_items))

    def item_counts(self) -> np.ndarray:
        """(n_items,) int64 interactions per item (popularity)."""
        return np.bincount(self.items, minlength=self.n_items)

    def user_index(self, user_id: str) -> int | None:
        """Internal index of an original user id, or None when unknown."""
        return _lookup(self, "user_ids", "_user_map").get(str(user_id))

    def item_index(self, item_id: str) -> int | None:
        """Internal index of an original item id, or None when unknown."""
        return _lookup(self, "item_ids", "_item_map").get(str(item_id))


def _lookup(data: Interactions, name: str, cache: str) -> dict[str, int]:
    if getattr(data, cache, None) is None or len(getattr(data, cache)) != len(getattr(data, name)):
        setattr(data, cache, {key: index for index, key in enumerate(getattr(data, name))})
    return getattr(data, cache)


# --- reading ---------------------------------------------------------------------------------


def read_interactions(
    path: str | os.PathLike,
    user_col: Column = None,
    item_col: Column = None,
    rating_col: Column = None,
    time_col: Column = None,
    *,
    sep: str | None = None,
    header: bool | None = None,
    implicit: bool = False,
    rating_range: tuple[float, float] | None = None,
    duplicates: Duplicates = "error",
) -> Interactions:
    """Read and check a ratings file; see the module docstring for the rules.

    Args:
        path: CSV, TSV (MovieLens `u.data` included) or Parquet file.
        user_col, item_col, rating_col, time_col: column name, or 0-based position as an int
            or a string of digits. None picks the default; `rating_col`/`time_col` may be
            absent from the file when left as None.
        sep: field separator (default from the suffix: comma for .csv, else tab).
        header: whether the first line is a header (None: detect).
        implicit: ignore ratings (every row is one interaction).
        rating_range: (low, high) bounds every rating must lie in, inclusive.
        duplicates: "error" (one line naming both lines) or "last" (keep the last occurrence).
    """
    path = Path(path)
    if not path.is_file():
        raise NlprecError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise NlprecError(f"{path}: empty file: expected lines of user, item[, rating[, timestamp]]")
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        table, first_line = _read_parquet(path), 1
    else:
        table, first_line = _read_text(path, sep if sep is not None else _guess_sep(path), header,
                                       (user_col, item_col, rating_col, time_col))
    return _from_table(path, table, first_line, (user_col, item_col, rating_col, time_col),
                       implicit, rating_range, duplicates)


def _read_parquet(path: Path) -> Any:
    try:
        import pandas as pd

        return pd.read_parquet(path)
    except ImportError as err:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from err
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise NlprecError(f"{path}: not a readable Parquet file ({_first_line(err)})") from None


def _guess_sep(path: Path) -> str:
    """Comma for .csv; otherwise tab, unless the first line has none but has "::" (MovieLens 1M) or commas."""
    if path.suffix.lower() == ".csv":
        return ","
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace")
    if "\t" not in first:
        if "::" in first:
            return "::"
        if "," in first:
            return ","
    return "\t"


def _read_text(path: Path, sep: str, header: bool | None, columns: Sequence[Column]) -> tuple[Any, int]:
    """Read every field as text; returns the table (named columns when there is a header) and
    the file line number of the table's first row."""
    import pandas as pd

    if header is None:
        header = _looks_like_header(path, sep, columns)
    try:
        table = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                            na_values=[], skip_blank_lines=False, encoding="utf-8",
                            engine="c" if len(sep) == 1 else "python")
    except pd.errors.EmptyDataError:
        raise NlprecError(f"{path}: empty file: expected lines of user, item[, rating[, timestamp]]") from None
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found:
            expected, line, saw = found.groups()
            raise NlprecError(f"{path} line {line}: {saw} fields, expected {expected} like the first line "
                              f"(separator {sep!r})") from None
        raise NlprecError(f"{path}: {_first_line(err)} (separator {sep!r})") from None
    except UnicodeDecodeError as err:
        raise NlprecError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#x} at offset {err.start})") from None
    if header:
        table.columns = [str(name).strip() for name in table.columns]
    return table, 2 if header else 1


def _looks_like_header(path: Path, sep: str, columns: Sequence[Column]) -> bool:
    """Line 1 is a header when it names a known column (or one passed by name), or when some
    field is not a number on line 1 but is on line 2 (as csv.Sniffer does)."""
    rows: list[list[str]] = []
    with open(path, "rb") as handle:
        for raw in handle:
            text = raw.decode("utf-8", errors="replace").strip("\r\n")
            if text.strip():
                rows.append([part.strip().strip('"').lower() for part in text.split(sep)])
            if len(rows) == 2:
                break
    if not rows:
        return False
    known = set(USER_NAMES + ITEM_NAMES + RATING_NAMES + TIME_NAMES)
    named = {str(c).lower() for c in columns if isinstance(c, str) and not c.isdigit()}
    if any(f in known or f in named for f in rows[0]):
        return True
    if len(rows) < 2:
        return False
    return any(first and second and _not_number(first) and not _not_number(second)
               for first, second in zip(rows[0], rows[1]))


def _not_number(text: str) -> bool:
    try:
        float(text)
        return False
    except ValueError:
        return True


def _resolve(table: Any, path: Path, wanted: Column, names: Sequence[str], default_position: int | None,
             role: str, required: bool) -> Any:
    """The column called `wanted` (name or position) or the default one; None when optional and absent."""
    columns = list(table.columns)
    has_names = not all(isinstance(c, int) for c in columns)
    if wanted is not None:
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
            position = int(wanted)
            if position >= len(columns):
                raise NlprecError(f"{path}: {role} column {position} requested but the file has "
                                  f"{len(columns)} columns (positions start at 0)")
            return columns[position]
        if wanted in columns:
            return wanted
        listing = ", ".join(map(_shown, columns)) if has_names else "none: the file has no header"
        raise NlprecError(f"{path}: no {role} column {wanted!r}; columns: {listing}")
    if has_names:
        lowered = {str(c).lower(): c for c in columns}
        for name in names:
            if name in lowered:
                return lowered[name]
        if required:
            raise NlprecError(f"{path}: no {role} column among {', '.join(map(_shown, columns))}; "
                              f"name one with --{role}-col")
        return None
    if default_position is not None and default_position < len(columns):
        return columns[default_position]
    if required:
        raise NlprecError(f"{path}: line 1 has {len(columns)} field(s): expected at least user and item")
    return None


def _from_table(path: Path, table: Any, first_line: int, columns: Sequence[Column], implicit: bool,
                rating_range: tuple[float, float] | None, duplicates: Duplicates) -> Interactions:
    import pandas as pd

    user_col, item_col, rating_col, time_col = columns
    user_key = _resolve(table, path, user_col, USER_NAMES, 0, "user", True)
    item_key = _resolve(table, path, item_col, ITEM_NAMES, 1, "item", True)
    rating_key = None if implicit and rating_col is None else _resolve(
        table, path, rating_col, RATING_NAMES, 2, "rating", rating_col is not None)
    time_key = _resolve(table, path, time_col, TIME_NAMES, 3, "time", time_col is not None)
    if len({k for k in (user_key, item_key, rating_key, time_key) if k is not None}) < \
            sum(k is not None for k in (user_key, item_key, rating_key, time_key)):
        raise NlprecError(f"{path}: the user, item, rating and time columns must differ")

    lines = np.arange(len(table), dtype=np.int64) + first_line  # (N,) file line per row
    users_text, items_text = _ids(table[user_key]), _ids(table[item_key])
    blank = (users_text == "").to_numpy() & (items_text == "").to_numpy()
    if blank.any():  # blank lines (or rows with both ids empty) are skipped
        keep = ~blank
        table, users_text, items_text, lines = table[keep], users_text[keep], items_text[keep], lines[keep]
    if len(table) == 0:
        raise NlprecError(f"{path}: no interactions: expected lines of user, item[, rating[, timestamp]]")
    for key, text, role in ((user_key, users_text, "user"), (item_key, items_text, "item")):
        missing = (text == "").to_numpy()
        if missing.any():
            row = int(np.argmax(missing))
            raise NlprecError(f"{path} line {lines[row]}: empty {role} id ({_column_name(table[key])}); "
                              f"expected a user and an item on every line")

    ratings = None
    if rating_key is not None and not implicit:
        ratings = _numbers(path, table[rating_key], lines, "rating").astype(np.float32)
        if rating_range is not None:
            low, high = rating_range
            bad = (ratings < low) | (ratings > high)
            if bad.any():
                row = int(np.argmax(bad))
                raise NlprecError(f"{path} line {lines[row]}: rating {table[rating_key].iloc[row]!s} "
                                  f"is outside the range [{low:g}, {high:g}]")
    timestamps = _times(path, table[time_key], lines) if time_key is not None else None

    user_codes, user_ids = pd.factorize(users_text, sort=False)
    item_codes, item_ids = pd.factorize(items_text, sort=False)
    users, items = user_codes.astype(np.int64), item_codes.astype(np.int64)
    keys = users * len(item_ids) + items  # (N,) one int per (user, item) pair
    order = np.argsort(keys, kind="stable")
    repeated = np.zeros(len(keys), dtype=bool)
    repeated[order[1:]] = keys[order[1:]] == keys[order[:-1]]  # True on every occurrence after the first
    if repeated.any():
        if duplicates == "error":
            row = int(np.flatnonzero(repeated)[0])
            first = int(np.flatnonzero(keys == keys[row])[0])
            raise NlprecError(f"{path} line {lines[row]}: duplicate pair (user {user_ids[users[row]]}, item "
                              f"{item_ids[items[row]]}) first seen on line {lines[first]}; "
                              f"remove it or pass --duplicates last")
        keep_last = np.ones(len(keys), dtype=bool)
        keep_last[order[:-1]] = keys[order[:-1]] != keys[order[1:]]  # drop all but the last occurrence
        rows = np.flatnonzero(keep_last)
        users, items, lines = users[rows], items[rows], lines[rows]
        ratings = None if ratings is None else ratings[rows]
        timestamps = None if timestamps is None else timestamps[rows]
    return Interactions(users, items, [str(u) for u in user_ids], [str(i) for i in item_ids],
                        ratings, timestamps, str(path), lines)


def _ids(column: Any) -> Any:
    """Id column as stripped strings; missing values become "" (integral floats lose their ".0").
    Integer columns (Parquet) stay integers: they factorize to the same ids, in the same order, as
    their strings would, without a Python string per row (10M rows: about 1 GiB and half a minute)."""
    if column.dtype.kind in "iu":
        return column
    if column.dtype.kind == "f":
        values = column.to_numpy()
        if np.all(np.isnan(values) | (values == np.round(values))):
            column = column.astype("Int64")
    return column.astype("string").fillna("").astype(str).str.strip()


def _numbers(path: Path, column: Any, lines: np.ndarray, role: str) -> np.ndarray:
    import pandas as pd

    numeric = column.dtype.kind in "iuf"  # numeric columns are never turned into strings
    if numeric:
        values = column.to_numpy(dtype=np.float64)
    else:
        text = column.fillna("").astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        shown = str(column.iloc[row]) if numeric else text.iloc[row]
        what = "missing" if shown == "" else f"{shown!r} is not a finite number"
        raise NlprecError(f"{path} line {lines[row]}: {role} {what}; expected a number in {_column_name(column)}")
    return values


def _times(path: Path, column: Any, lines: np.ndarray) -> np.ndarray:
    """Numbers as they are; otherwise ISO-8601 dates and times, as seconds since 1970."""
    import pandas as pd

    if column.dtype.kind in "iuf":
        return _numbers(path, column, lines, "timestamp")
    text = column.astype("string").fillna("").astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        row = int(np.argmax(empty))
        raise NlprecError(f"{path} line {lines[row]}: timestamp missing; expected a number or an ISO-8601 "
                          f"date in {_column_name(column)}")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        return _numbers(path, column, lines, "timestamp")
    try:
        moments = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
    except ValueError:
        moments = pd.Series(pd.NaT, index=text.index)
    if moments.isna().any() or numbers.notna().any():
        bad = moments.isna().to_numpy() if numbers.notna().sum() == 0 else numbers.isna().to_numpy()
        row = int(np.argmax(bad))
        raise NlprecError(f"{path} line {lines[row]}: timestamp {text.iloc[row]!r} is not a number or an "
                          f"ISO-8601 date (all timestamps in {_column_name(column)} must be one kind)")
    return (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


def _shown(name: Any) -> str:
    """A header name on one line: a quoted CSV field may hold newlines."""
    return " ".join(str(name).split()) or repr(str(name))


def _column_name(column: Any) -> str:
    name = column.name
    return f"column {name!r}" if isinstance(name, str) else f"column position {int(name)}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(err).__name__


# --- splits ----------------------------------------------------------------------------------


def split_random(data: Interactions, test_ratio: float = 0.1, seed: int = 0) -> tuple[Interactions, Interactions]:
    """A uniformly random `test_ratio` share of the rows as test (exactly round(ratio * N) rows)."""
    _check_ratio(test_ratio)
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = int(round(test_ratio * len(data)))
    test_rows = np.sort(order[:n_test])
    mask = np.ones(len(data), dtype=bool)
    mask[test_rows] = False
    return data.subset(np.flatnonzero(mask)), data.subset(test_rows)


def split_leave_one_out(data: Interactions) -> tuple[Interactions, Interactions]:
    """Each user's latest interaction (by timestamp; ties: the later line) as test.

    Users with a single interaction keep it in train and have no test row.
    """
    if data.timestamps is None:
        raise NlprecError(f"{data.source}: leave-one-out needs a time column (--time-col), "
                          "or choose --split random")
    position = np.arange(len(data))
    order = np.lexsort((position, data.timestamps, data.users))  # by user, then time, then line
    sorted_users = data.users[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_users[:-1] != sorted_users[1:]  # the last row of each user's run
    counts = np.bincount(data.users, minlength=data.n_users)
    last &= counts[sorted_users] > 1
    test_rows = np.sort(order[last])
    mask = np.ones(len(data), dtype=bool)
    mask[test_rows] = False
    return data.subset(np.flatnonzero(mask)), data.subset(test_rows)


def split_temporal(data: Interactions, test_ratio: float = 0.1) -> tuple[Interactions, Interactions]:
    """The latest `test_ratio` share of all rows (one global time cut; ties: the later line) as test."""
    _check_ratio(test_ratio)
    if data.timestamps is None:
        raise NlprecError(f"{data.source}: a temporal split needs a time column (--time-col)")
    order = np.lexsort((np.arange(len(data)), data.timestamps))
    n_test = int(round(test_ratio * len(data)))
    test_rows = np.sort(order[len(order) - n_test:])
    mask = np.ones(len(data), dtype=bool)
    mask[test_rows] = False
    return data.subset(np.flatnonzero(mask)), data.subset(test_rows)


def split(data: Interactions, how: SplitName, test_ratio: float = 0.1, seed: int = 0
          ) -> tuple[Interactions, Interactions]:
    """Dispatch to the split named `how`; "none" returns all rows as train and an empty test."""
    if how == "random":
        return split_random(data, test_ratio, seed)
    if how == "leave_one_out":
        return split_leave_one_out(data)
    if how == "temporal":
        return split_temporal(data, test_ratio)
    if how == "none":
        return data, data.subset(np.zeros(0, dtype=np.int64))
    raise NlprecError(f"split {how!r}: expected 'random', 'leave_one_out', 'temporal' or 'none'")


def describe_split(how: SplitName, test_ratio: float, seed: int) -> str:
    """The split in words, printed with every result."""
    if how == "random":
        return f"random split: {100 * test_ratio:g}% of interactions as test (seed {seed})"
    if how == "leave_one_out":
        return "leave-one-out: each user's latest interaction by timestamp as test"
    if how == "temporal":
        return f"temporal split: the latest {100 * test_ratio:g}% of interactions (global time cut) as test"
    return "no split: every interaction is used for training (nothing held out)"


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise NlprecError(f"test ratio {ratio}: expected a number strictly between 0 and 1")


# --- negative sampling -----------------------------------------------------------------------


def sample_negatives(users: np.ndarray, seen: SeenPairs, rng: np.random.Generator, n: int = 1,
                     max_rounds: int = 100) -> np.ndarray:
    """For each user in `users` (N,), `n` uniformly drawn items that user has not seen: (N, n).

    All draws happen at once; only those that hit a seen pair are redrawn (the expected number of
    rounds is small unless a user has seen nearly every item). Draws within a row may repeat
    (sampling with replacement).
    """
    users = np.asarray(users, dtype=np.int64)
    out = rng.integers(0, seen.n_items, size=(len(users), n), dtype=np.int64)  # (N, n)
    todo = np.arange(out.size)  # flat positions still to check
    row_users = np.repeat(users, n)  # (N * n,)
    for _ in range(max_rounds):
        flat = out.reshape(-1)
        todo = todo[seen.contains(row_users[todo], flat[todo])]
        if len(todo) == 0:
            return out
        flat[todo] = rng.integers(0, seen.n_items, size=len(todo), dtype=np.int64)
    stuck = np.unique(row_users[todo])
    raise NlprecError(f"could not draw unseen items for {len(stuck)} user(s) (e.g. internal user {stuck[0]}): "
                      "they have seen (nearly) every item")


def sample_eval_negatives(users: np.ndarray, seen: sp.csr_matrix, n: int, seed: int = 0,
                          block: int = 1024) -> np.ndarray:
    """`n` distinct items per user in `users` (U,) that the user never interacted with: (U, n).

    Exactly uniform without replacement, drawn once with `seed`, sorted within each row. Up to
    DENSE_DRAW_ITEMS items: random keys for every item, seen items pushed to the end, the `n`
    smallest kept, in blocks of users. Larger catalogues: the draw that costs O(U x I) there
    (100k users x 50k items: about two CPU minutes) is replaced by `_rejection_draw`, O(U x n).
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = seen.shape[1]
    fewest_unseen = n_items - int(np.diff(seen.indptr)[users].max(initial=0))
    if n > fewest_unseen:
        raise NlprecError(f"{n} sampled negatives per user requested but some user has only {fewest_unseen} "
                          "unseen items; lower --eval-negatives or use --protocol full")
    rng = np.random.default_rng(seed)
    if n_items > DENSE_DRAW_ITEMS:
        return _rejection_draw(users, seen, n, rng, block)
    out = np.empty((len(users), n), dtype=np.int64)
    for start in range(0, len(users), block):
        rows = users[start:start + block]
        keys = rng.random((len(rows), n_items))  # (B, I)
        keys[seen[rows].toarray() > 0] = 2.0  # seen items after every unseen one
        part = np.argpartition(keys, n - 1, axis=1)[:, :n]  # (B, n), unordered
        out[start:start + block] = np.sort(part, axis=1)
    return out


DENSE_DRAW_ITEMS = 20_000  # catalogues up to this size keep the dense draw (and its exact seeded values)


def _rejection_draw(users: np.ndarray, seen: sp.csr_matrix, n: int, rng: np.random.Generator,
                    block: int) -> np.ndarray:
    """`sample_eval_negatives` for large catalogues: per user, uniform draws in order, a draw kept
    when it is unseen and not drawn before, the first `n` kept (a uniform n-subset of the unseen
    items); rows left short draw again with twice the candidates, and a row that stays short
    after a few rounds (a user who saw most items) takes the dense draw."""
    n_items = seen.shape[1]
    seen = seen.tocsr()
    seen_pairs = SeenPairs.of_matrix(seen)
    out = np.empty((len(users), n), dtype=np.int64)
    todo = np.arange(len(users))  # rows of `out` still to fill
    width = 2 * n + 16
    for _ in range(4):
        if not len(todo):
            return out
        short = []
        for start in range(0, len(todo), block):
            rows = todo[start:start + block]  # (B,)
            drawn = rng.integers(0, n_items, size=(len(rows), width), dtype=np.int64)  # (B, W)
            keep = _first_unseen(users[rows], drawn, seen_pairs)  # (B, W) bool
            enough = keep.sum(1) >= n  # (B,)
            ranks = np.cumsum(keep, axis=1)  # (B, W) how many kept up to each draw
            chosen = drawn[enough][keep[enough] & (ranks[enough] <= n)].reshape(-1, n)  # (B', n)
            out[rows[enough]] = np.sort(chosen, axis=1)
            short.append(rows[~enough])
        todo, width = np.concatenate(short), width * 2
    for row in todo:  # a user who saw most of the catalogue: every item's key, as the dense draw
        keys = rng.random(n_items)  # (I,)
        keys[seen[users[row]].indices] = 2.0
        out[row] = np.sort(np.argpartition(keys, n - 1)[:n])
    return out


def _first_unseen(users: np.ndarray, drawn: np.ndarray, seen: SeenPairs) -> np.ndarray:
    """(B, W) bool: the draw is unseen by its row's user and that item's first draw in the row."""
    width = drawn.shape[1]
    unseen = ~seen.contains(np.repeat(users, width), drawn.reshape(-1))  # (B * W,)
    row_keys = np.repeat(np.arange(len(users)), width) * seen.n_items + drawn.reshape(-1)  # (B * W,)
    first = np.zeros(len(row_keys), dtype=bool)
    first[np.unique(row_keys, return_index=True)[1]] = True
    return (unseen & first).reshape(drawn.shape)


# --- data modules for the trainer ------------------------------------------------------------


class _ShuffledRowsData:
    """Base of the recommender data modules: every epoch a seeded permutation of all rows, sliced
    into batches, strided by rank (no length bucketing; `train_dataloader` is a generator)."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        if batch_size < 1:
            raise NlprecError(f"batch size {batch_size}: expected >= 1")
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return max(1, math.ceil(self.n_rows / self.batch_size) // world_size)

    def _slices(self, rng: np.random.Generator, rank: int, world_size: int) -> Iterator[np.ndarray]:
        order = rng.permutation(self.n_rows)
        for batch in self._batches(rank, world_size):
            yield order[batch]

    def _batches(self, rank: int, world_size: int) -> Iterator[slice]:
        """This rank's batches of the epoch, as slices of its shuffled order."""
        for step in range(self.steps_per_epoch(world_size)):
            index = step * world_size + rank
            yield slice(index * self.batch_size, (index + 1) * self.batch_size)

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch])

    def state_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "batch_size": self.batch_size, "seed": self.seed}


class RatingsData(_ShuffledRowsData):
    """Explicit ratings in shuffled minibatches: `users`, `items` (B,) int64, `ratings` (B,) float32.

    Each epoch gathers the rows once in their shuffled order, so a batch is a slice of three
    contiguous arrays, not three random gathers from the whole log (on a 10M-row log those miss the
    cache every step: BENCHMARKS.md, "Recommenders: a compiled lazy Adam")."""

    def __init__(self, train: Interactions, batch_size: int = 1024, seed: int = 0):
        if train.ratings is None:
            raise NlprecError(f"{train.source}: this model needs ratings; name the rating column with --rating-col")
        super().__init__(len(train), batch_size, seed)
        self.users, self.items = train.users, train.items  # (N,) int64 each
        self.ratings = train.ratings.astype(np.float32, copy=False)  # (N,)

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, Any]]:
        order = self._rng(epoch).permutation(self.n_rows)  # (N,)
        users, items, ratings = (torch.from_numpy(column[order]) for column in (self.users, self.items, self.ratings))
        for batch in self._batches(rank, world_size):
            yield {"users": users[batch], "items": items[batch], "ratings": ratings[batch]}


class PairwiseData(_ShuffledRowsData):
    """(user, positive, negative) triples for pairwise losses, negatives drawn afresh each epoch.

    Each epoch lists every training interaction `n_negatives` times, each time with a freshly
    drawn unseen item: `users`, `pos_items`, `neg_items` (B,) int64. Seen means seen in `train`
    (plus `exclude`, e.g. the validation rows). `recent` > 0 with `recent_copies` > 0 lists each
    user's `recent` latest interactions that many more times: a recency weight on the loss (as
    time-decay collaborative filtering does, Ding & Li 2005), for when what a user does next is
    what is asked for.

    Memory: the rows are kept once (not `n_negatives` copies); an epoch shuffles one int32 slot
    per (interaction, negative) and draws the negatives batch by batch (`sample_negatives`,
    vectorised within the batch), so no epoch-sized array of users, items or negatives exists.
    """

    def __init__(self, train: Interactions, batch_size: int = 1024, n_negatives: int = 1, seed: int = 0,
                 exclude: Interactions | None = None, recent: int = 0, recent_copies: int = 0):
        if n_negatives < 1:
            raise NlprecError(f"negatives per positive {n_negatives}: expected >= 1")
        if recent < 0 or recent_copies < 0:
            raise NlprecError(f"recent {recent}, recent copies {recent_copies}: expected >= 0 each")
        rows = np.concatenate([np.arange(len(train))] + [latest_rows(train, recent)] * recent_copies)  # (N',)
        super().__init__(len(rows) * n_negatives, batch_size, seed)
        self.n_items, self.n_negatives = train.n_items, n_negatives
        self.recent, self.recent_copies = recent, recent_copies
        self.users = train.users[rows]  # (N',) one entry per listed interaction
        self.pos_items = train.items[rows]  # (N',)
        seen = train if exclude is None else train.concat(exclude)
        self.seen = SeenPairs.of(seen.users, seen.items, train.n_users, train.n_items)

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, Any]]:
        rng = self._rng(epoch)
        for slots in self._slices(rng, rank, world_size):
            rows = slots // self.n_negatives  # (B,) the listed interaction behind each slot
            users = self.users[rows]  # (B,)
            negatives = sample_negatives(users, self.seen, rng)[:, 0]  # (B,)
            yield {"users": torch.from_numpy(users), "pos_items": torch.from_numpy(self.pos_items[rows]),
                   "neg_items": torch.from_numpy(negatives)}

    def _slices(self, rng: np.random.Generator, rank: int, world_size: int) -> Iterator[np.ndarray]:
        """The epoch's shuffled slots (interaction x negative) in batches, as int32 while they fit:
        one 4-byte slot per triple is the only array of the epoch's size."""
        dtype = np.int32 if self.n_rows < 2**31 else np.int64
        order = np.arange(self.n_rows, dtype=dtype)
        rng.shuffle(order)
        for step in range(self.steps_per_epoch(world_size)):
            index = step * world_size + rank
            yield order[index * self.batch_size:(index + 1) * self.batch_size].astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_negatives": self.n_negatives, "recent": self.recent,
                "recent_copies": self.recent_copies}


def latest_rows(data: Interactions, per_user: int) -> np.ndarray:
    """Row indices of each user's `per_user` latest interactions (by timestamp, ties and data
    without timestamps by file order, later rows being later)."""
    if per_user <= 0 or len(data) == 0:
        return np.empty(0, dtype=np.int64)
    order_in_file = np.arange(len(data))
    times = data.timestamps if data.timestamps is not None else order_in_file
    order = np.lexsort((-order_in_file, -times, data.users))  # by user, newest first
    users = data.users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]  # first row of each user in `order`
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))  # 0 = newest
    return np.sort(order[rank < per_user])


class ItemRowsData(_ShuffledRowsData):
    """Item-based AutoRec input: each item's column of the rating matrix, in shuffled batches.

    `items` (B,) int64, `ratings` (B, n_users) float32 (0 where unobserved) and `mask`
    (B, n_users) float32 (1 where observed). Items without training ratings are left out.
    """

    def __init__(self, train: Interactions, batch_size: int = 64, seed: int = 0):
        if train.ratings is None:
            raise NlprecError(f"{train.source}: this model needs ratings; name the rating column with --rating-col")
        self.by_item = train.matrix("ratings").T.tocsr()  # (n_items, n_users)
        self.observed = train.matrix("ones").T.tocsr()  # (n_items, n_users); a rating of 0 is still observed
        self.rated = np.flatnonzero(np.diff(self.observed.indptr) > 0)  # items with at least one rating
        super().__init__(len(self.rated), batch_size, seed)

    def rows(self, items: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch for these item indices."""
        ratings = torch.from_numpy(self.by_item[items].toarray())  # (B, n_users)
        mask = torch.from_numpy(self.observed[items].toarray())  # (B, n_users)
        return {"items": torch.from_numpy(np.asarray(items, dtype=np.int64)), "ratings": ratings, "mask": mask}

    def train_dataloader(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, Any]]:
        for rows in self._slices(self._rng(epoch), rank, world_size):
            yield self.rows(self.rated[rows])


__all__ = [
    "Interactions", "read_interactions", "split", "split_random", "split_leave_one_out", "split_temporal",
    "describe_split", "pair_keys", "SeenPairs", "latest_rows", "sample_negatives", "sample_eval_negatives", "RatingsData",
    "PairwiseData", "ItemRowsData",
]

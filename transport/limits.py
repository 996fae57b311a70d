"""Every limit of the system, in one place: the CSV parser, the protocol, the APIServer, the config
loader and every command line take their bounds from here, so what one part accepts another never
refuses.

The price limits are derived from each other so that the rule can never leave them: a competitor
price the CSV accepts, averaged and multiplied by any factor a strategy may have, rounded to cents,
is a price the APIServer accepts (``tests/test_limits.py`` proves it over the whole range).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

# --- money ---------------------------------------------------------------------------------------
PRICE_DECIMALS: Final = 6  # digits after the point in any price read (CSV) or accepted (API)
PRICE_MIN: Final = Decimal("0.01")  # one cent: the smallest price a book can be set to
PRICE_MAX: Final = Decimal("10000000")  # the largest price the API accepts (and we ever set)
PRICE_MAX_INTEGER_DIGITS: Final = len(str(int(PRICE_MAX)))  # 8

# A strategy's factors (sold_factor, unsold_factor): bounded so that a price within the competitor
# range below stays within [PRICE_MIN, PRICE_MAX] after the rule (0.01 * 0.5 rounds half-up to 0.01).
FACTOR_MIN: Final = Decimal("0.5")
FACTOR_MAX: Final = Decimal("2")
FACTOR_DECIMALS: Final = 36  # a factor's decimals at most: every decision carries it in a 40-character field

# Competitor prices the CSV accepts: what the rule can turn into a price the API takes.
COMPETITOR_PRICE_MIN: Final = PRICE_MIN
COMPETITOR_PRICE_MAX: Final = PRICE_MAX / FACTOR_MAX  # 5,000,000

# The mean of a window (avg_comp_price) is computed in a decimal context of MEAN_DIGITS significant
# digits (actors.pricing.rule takes its precision from here) and is carried, shown and kept as
# computed: the value the price was rounded from, never rounded for show, so that the price a decision
# shows is always reprice(its avg_comp_price) (a mean rounded to fewer places can move the price by a
# cent: 0.08, 0.08, 0.09 at 0.9 prices 0.08 from the mean, 0.07 from 0.083333).
# A window of 3, 6, 7 or 9 prices has a mean of MEAN_DIGITS digits; its text is bounded by them: a
# mean is at least COMPETITOR_PRICE_MIN, so its first digit lies at most 2 places after the point
# ("0.0" + 60 digits: 61 decimals, 63 characters).
MEAN_DIGITS: Final = 60
MEAN_DECIMALS: Final = MEAN_DIGITS - 1 - COMPETITOR_PRICE_MIN.adjusted()  # 61
MEAN_TEXT_MAX: Final = max(len("0.") + MEAN_DECIMALS, MEAN_DIGITS + len("."))  # 63

# --- books, strategies, windows ------------------------------------------------------------------
BOOK_ID_MAX_LEN: Final = 128
STRATEGY_NAME_MAX_LEN: Final = 64
GUARDRAIL_NAME_MAX_LEN: Final = 32  # a guardrail's name in a decision's list of those that moved its price
WINDOW_MAX: Final = 64  # competitor prices one decision may average, and the DataManager keeps per book
WINDOW_DEFAULT: Final = 5
BOOKS_MAX: Final = 1_000_000  # distinct books the DataManager keeps, and pairs a config may list
# Book-requests (one per book of a WindowsRequest) waiting in the DataManager for rows to be read: in
# all, and from one client (a flooding client gets "busy" replies, the others keep their share).
DM_WAITING_MAX: Final = 200_000
DM_PEER_WAITING_MAX: Final = 100_000
DM_PEER_BOOK_TICKS_MAX: Final = 2  # distinct ticks of one book one client may have waiting (one window per book)
DM_INDEX_POINTS_MAX: Final = 4 * 1024 * 1024  # byte offsets in the DataManager's sparse index (8 bytes each)

# --- time ----------------------------------------------------------------------------------------
TICK_MIN: Final = 0.01  # seconds between ticks
TICK_MAX: Final = 86_400.0
DELAY_MAX: Final = Decimal(3600)  # x, seconds between registering a request and reading it
# A tick whose due time (t0 + seq * interval) is further than this from the receiver's wall clock is
# implausible (a forged or corrupt seq, or a clock off by more than this) and is refused.
TICK_CLOCK_SKEW_MAX: Final = 60.0

# --- processes and endpoints ------------------------------------------------------------------------
LAUNCHER_WORKERS_MAX: Final = 64  # Algorithm processes one launcher starts (each ~40 MiB)
DATA_MANAGERS_MAX: Final = 16  # DataManager processes one launcher starts (each holds every window)
IPC_PATH_MAX_BYTES: Final = 107  # a unix socket path (sun_path is 108 bytes with the final NUL)

# --- batches ---------------------------------------------------------------------------------------
BATCH_BOOKS_MAX: Final = 1000  # books in one WindowsRequest to the DataManager
BATCH_PRICES_MAX: Final = 32_768  # books x count in one WindowsRequest: bounds the reply's size
API_BATCH_MAX: Final = 1000  # items in one batched APIServer call
# Decisions in one LedgerBatch: a batch of the largest decisions the protocol accepts still fits in one
# frame (tests/actors/ledger/test_protocol.py proves it).
LEDGER_BATCH_MAX: Final = 200
LEDGER_QUERY_MAX: Final = 1000  # (book, strategy) pairs in one LastDecidedRequest
LEDGER_OUTBOX_MAX: Final = 50_000  # unacknowledged decisions an Algorithm worker keeps for the Ledger (default)
# Decisions kept and unacknowledged by a Ledger that answers before new pairs wait (--ledger-backlog's
# default): the Ledger's own queue (10,000), and what it commits in about a second.
LEDGER_BACKLOG_MAX: Final = 10_000

# --- sizes on the wire and on disk ---------------------------------------------------------------
FRAME_MAX_BYTES: Final = 1024 * 1024  # one ZeroMQ message (ZMQ_MAXMSGSIZE on every receiving socket)
HTTP_BODY_MAX_BYTES: Final = 4096  # one APIServer single-item request body
HTTP_BATCH_BODY_MAX_BYTES: Final = 256 * 1024  # one APIServer batch request body
CSV_LINE_MAX_BYTES: Final = 256 * 1024  # a longer CSV line is skipped as a bad row
CSV_HEADER_SEARCH_LINES: Final = 10_000  # blank lines a start-time check reads past to find a CSV's header
BOOKS_FILE_MAX_BYTES: Final = 64 * 1024 * 1024  # a --books-file or a config's book list
CATALOG_MAX_BYTES: Final = 256 * 1024 * 1024  # a guardrail catalog (streamed: 1,000,000 rows of long ids)
CONFIG_MAX_BYTES: Final = 1024 * 1024

# --- the APIServer's HTTP edge (bounds on what one client can hold) -----------------------------------
HTTP_LINE_MAX_BYTES: Final = 4096  # the request line, and each header line
HTTP_HEADERS_MAX: Final = 32  # header lines in one request
HTTP_CONNECTIONS_MAX: Final = 512  # open connections; a further one is answered 503 and closed
HTTP_IDLE_TIMEOUT: Final = 30.0  # s a connection may take to send a request's headers (and idle between
                                 # requests): above the 15 s after which aiohttp's client drops idle ones
HTTP_BODY_TIMEOUT: Final = 10.0  # s to receive one request body
HTTP_WRITE_TIMEOUT: Final = 10.0  # s a client may leave our responses unread once its buffer is full
API_RATE_MAX: Final = 1_000_000.0  # the largest --rate-limit (requests/s per endpoint)
API_BURST_MAX: Final = 1_000_000  # the largest --burst


def is_valid_book_id(book: str) -> bool:
    """A book id we accept anywhere: 1..BOOK_ID_MAX_LEN printable characters, no surrounding space.
    (No control characters: ids end up in logs and output lines.)"""
    return 0 < len(book) <= BOOK_ID_MAX_LEN and book.isprintable() and book == book.strip()

//! What every HTTP API of the system puts in front of its routes: the emitting services'
//! bearer tokens, and bounds on request body size, concurrency and rate for every API
//! (the three emitting services and the projector). Every refusal is JSON
//! `{"error": "..."}`, like the APIs' own errors.
//!
//! # Layout
//!
//! - [`tokens`]: [`ApiTokens`], the tokens a service accepts (from `--token-file` or
//!   `STOCKPILE_API_TOKEN`), kept as SHA-256 digests and compared in constant time.
//! - [`rate`]: [`RateLimiter`], a token bucket (GCRA) over an API's requests.
//! - [`guard`]: [`Guard`], the one middleware layer that applies all of it, in order, and
//!   counts what it refused ([`Refusals`]).
//!
//! # The order of the checks
//!
//! 1. A declared body (`Content-Length`) over the limit: 413, nothing read.
//! 2. A free slot: `concurrency_max` requests at once, no queue — one more is shed with
//!    503 and `Retry-After` at once, so waiting requests never pile up in memory.
//! 3. Except on the open paths (`/health`, `/ready`: probes must answer without a secret):
//!    the bearer token, if the API has tokens (RFC 6750: 401 without one, 401
//!    `invalid_token` for one it does not know, 400 `invalid_request` for a malformed
//!    one), then the rate (429 with `Retry-After`). Authentication comes first, so a
//!    client without a token cannot use up the budget of those with one; a refused
//!    request costs one SHA-256 and holds its slot for microseconds.
//! 4. The body, read whole within `body_read_time_max` and `body_bytes_max` (408, 413),
//!    before the handler runs: a slow or endless body holds its slot for a bounded time
//!    and never reaches a handler, which is therefore never cancelled halfway.

pub mod guard;
pub mod rate;
pub mod tokens;

pub use guard::{Guard, GuardConfig, HttpLimits, Refusals};
pub use rate::RateLimiter;
pub use tokens::{API_TOKEN_ENV, ApiTokens};

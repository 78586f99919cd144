//! The one test binary of `stockpile-views`: scenario ledgers folded into views and
//! checked against the generator's reference model and the verifier, the chain checks
//! of the fold, the views digest, the Article 7 report and its renderings, and the chart
//! series.

mod article7;
mod chain;
mod digests;
mod scenarios;
mod series;
mod support;

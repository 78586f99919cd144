//! The trust root: the only thing an inspector trusts.
//!
//! A small JSON file naming the ledger's origin, the checkpoint (log) verifier keys and the
//! authority verifier keys, each as a C2SP verifier-key string
//! (`<name>+<key id hex>+<base64(0x01 ‖ public key)>`). Authority keys act as registrars:
//! they authorise every other signer through `SignerAuthorized` events in the ledger.
//!
//! ```json
//! {
//!   "format": "stockpile-trust/v1",
//!   "origin": "ledger.example-state.gov/apm",
//!   "log_keys": ["ledger.example-state.gov/apm+1a2b3c4d+AU..."],
//!   "authority_keys": ["registrar.example-state.gov+5e6f7a8b+AU..."]
//! }
//! ```

use serde::{Deserialize, Serialize};
use stockpile_core::keys::VerifierKey;
use stockpile_core::ledger::AuthorityKey;

/// The `format` value of a trust-root file.
pub const TRUST_FORMAT: &str = "stockpile-trust/v1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustRootFile {
    format: String,
    origin: String,
    log_keys: Vec<String>,
    authority_keys: Vec<String>,
}

/// A parsed, checked trust root.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    pub origin: String,
    pub log_keys: Vec<VerifierKey>,
    pub authority_keys: Vec<VerifierKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustRootError {
    #[error("trust root is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("trust root format is {found:?}; expected {TRUST_FORMAT:?}")]
    Format { found: String },
    #[error("trust root origin is empty")]
    EmptyOrigin,
    #[error("trust root names no {which} key")]
    NoKeys { which: &'static str },
    #[error("trust root {which} key {text:?} is not a valid C2SP Ed25519 verifier key: {problem}")]
    BadKey {
        which: &'static str,
        text: String,
        problem: String,
    },
}

impl TrustRoot {
    pub fn parse_json(text: &str) -> Result<TrustRoot, TrustRootError> {
        let file: TrustRootFile = serde_json::from_str(text)?;
        if file.format != TRUST_FORMAT {
            return Err(TrustRootError::Format { found: file.format });
        }
        if file.origin.is_empty() {
            return Err(TrustRootError::EmptyOrigin);
        }
        let parse_all =
            |which: &'static str, texts: &[String]| -> Result<Vec<VerifierKey>, TrustRootError> {
                if texts.is_empty() {
                    return Err(TrustRootError::NoKeys { which });
                }
                texts
                    .iter()
                    .map(|text| {
                        VerifierKey::parse(text).map_err(|error| TrustRootError::BadKey {
                            which,
                            text: text.chars().take(200).collect(),
                            problem: error.to_string(),
                        })
                    })
                    .collect()
            };
        Ok(TrustRoot {
            origin: file.origin,
            log_keys: parse_all("log", &file.log_keys)?,
            authority_keys: parse_all("authority", &file.authority_keys)?,
        })
    }

    pub fn to_json(&self) -> String {
        let file = TrustRootFile {
            format: TRUST_FORMAT.into(),
            origin: self.origin.clone(),
            log_keys: self.log_keys.iter().map(|key| key.to_string()).collect(),
            authority_keys: self
                .authority_keys
                .iter()
                .map(|key| key.to_string())
                .collect(),
        };
        serde_json::to_string_pretty(&file).expect("a trust root always serializes") + "\n"
    }

    /// The authority keys as the ledger state knows them: key id = the key's name.
    pub fn ledger_authority_keys(&self) -> Vec<AuthorityKey> {
        self.authority_keys
            .iter()
            .map(|key| AuthorityKey {
                key_id: key.name.clone(),
                public_key: key.public.to_bytes(),
            })
            .collect()
    }
}

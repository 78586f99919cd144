//! The bearer tokens an API accepts.
//!
//! A token file holds one token per line; blank lines and lines starting with `#` are
//! skipped. Several tokens are accepted at once so that a token can be rotated: add the
//! new one, move the clients over, remove the old one, restart. A token is an RFC 6750
//! `b64token` (letters, digits, `-._~+/`, then `=` padding) of
//! [`TOKEN_CHARS_MIN`]..=[`TOKEN_CHARS_MAX`] characters — `openssl rand -hex 32` makes
//! one.
//!
//! Only SHA-256 digests of the tokens are kept. A presented token is hashed and compared
//! with every digest in constant time ([`subtle`]), with no early exit: the time taken
//! depends neither on how much of a token matched nor on which token it was. Errors and
//! `Debug` never show a token.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Environment variable holding the tokens when no `--token-file` is given (one per line).
pub const API_TOKEN_ENV: &str = "STOCKPILE_API_TOKEN";

/// Shortest token: 32 characters are 128 bits of a hex-encoded random secret, beyond
/// guessing however many requests are tried.
pub const TOKEN_CHARS_MIN: usize = 32;

/// Longest token: far above any generated secret, so a token file cannot be mistaken
/// for something else (a key, a certificate).
pub const TOKEN_CHARS_MAX: usize = 512;

/// Tokens one API accepts at once: enough for a client per line plus rotation; each
/// request compares against all of them.
pub const TOKENS_MAX: usize = 16;

/// Token files read at most, per API.
pub const TOKEN_FILE_BYTES_MAX: u64 = 64 * 1024;

/// The tokens of one API, as SHA-256 digests.
#[derive(Clone)]
pub struct ApiTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokens({} token(s))", self.digests.len())
    }
}

impl ApiTokens {
    /// The tokens in `text` (one per line; `#` comments and blank lines skipped);
    /// `source` names where they came from in errors. At least one is required.
    pub fn parse(text: &str, source: &str) -> anyhow::Result<ApiTokens> {
        let mut tokens = ApiTokens {
            digests: Vec::new(),
        };
        tokens.add(text, source)?;
        anyhow::ensure!(!tokens.digests.is_empty(), "{source} holds no token");
        Ok(tokens)
    }

    /// The tokens of an API: from `files` if any are given (all their tokens), else from
    /// `env` (the value of [`API_TOKEN_ENV`]). Refuses when there is none, when a file
    /// is missing or holds none, and when a token is malformed; warns when a file is
    /// readable by other users.
    pub fn load(files: &[PathBuf], env: Option<&str>) -> anyhow::Result<ApiTokens> {
        let mut tokens = ApiTokens {
            digests: Vec::new(),
        };
        if files.is_empty() {
            let text = env.filter(|text| !text.trim().is_empty()).with_context(|| {
                format!(
                    "no API token: give --token-file PATH (one token per line) or set {API_TOKEN_ENV}"
                )
            })?;
            return ApiTokens::parse(text, API_TOKEN_ENV);
        }
        if env.is_some_and(|text| !text.trim().is_empty()) {
            tracing::warn!("{API_TOKEN_ENV} is ignored: the tokens come from --token-file");
        }
        for path in files {
            let text = read_token_file(path)?;
            let before = tokens.digests.len();
            tokens.add(&text, &path.display().to_string())?;
            anyhow::ensure!(
                tokens.digests.len() > before,
                "the token file {} holds no token",
                path.display()
            );
        }
        Ok(tokens)
    }

    fn add(&mut self, text: &str, source: &str) -> anyhow::Result<()> {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = number + 1;
            anyhow::ensure!(
                !line.contains(char::is_whitespace),
                "{source}, line {number}: one token per line, without spaces"
            );
            anyhow::ensure!(
                is_b64token(line),
                "{source}, line {number}: not a bearer token (letters, digits, - . _ ~ + /, then = padding)"
            );
            let chars = line.len();
            anyhow::ensure!(
                (TOKEN_CHARS_MIN..=TOKEN_CHARS_MAX).contains(&chars),
                "{source}, line {number}: a token of {chars} characters; tokens have {TOKEN_CHARS_MIN} to {TOKEN_CHARS_MAX} (e.g. `openssl rand -hex 32`)"
            );
            anyhow::ensure!(
                self.digests.len() < TOKENS_MAX,
                "{source}: more than {TOKENS_MAX} tokens"
            );
            self.digests.push(digest(line));
        }
        Ok(())
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Never true for tokens made by [`ApiTokens::parse`] or [`ApiTokens::load`].
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `token` is one of them, in time independent of the tokens' contents.
    pub fn verify(&self, token: &str) -> bool {
        let presented = digest(token);
        let mut found = subtle::Choice::from(0);
        for known in &self.digests {
            found |= known.ct_eq(&presented);
        }
        found.into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// RFC 6750's `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_b64token(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte))
}

fn read_token_file(path: &Path) -> anyhow::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    warn_if_readable_by_others(&file, path);
    let mut text = String::new();
    file.take(TOKEN_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= TOKEN_FILE_BYTES_MAX,
        "the token file {} is larger than {TOKEN_FILE_BYTES_MAX} bytes",
        path.display()
    );
    Ok(text)
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &std::fs::File, path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = file.metadata()
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the token file {} is readable by other users; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_file: &std::fs::File, _path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "Zm9yIHRoZSByb3RhdGlvbiwgYSBzZWNvbmQgdG9rZW4=";

    #[test]
    fn every_listed_token_is_accepted_and_nothing_else() {
        let tokens = ApiTokens::parse(&format!("# rotated in May\n{A}\n\n  {B}  \n"), "t")
            .expect("two tokens");
        assert_eq!(tokens.len(), 2);
        assert!(tokens.verify(A));
        assert!(tokens.verify(B));
        for wrong in [
            "",
            "0123456789abcdef0123456789abcdeF",
            "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcde",
        ] {
            assert!(!tokens.verify(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{tokens:?}"), "ApiTokens(2 token(s))");
    }

    #[test]
    fn malformed_token_text_is_refused_without_quoting_it() {
        let secret = "s3cr3t-but-too-short";
        for (text, says) in [
            ("", "holds no token"),
            ("# only a comment\n\n", "holds no token"),
            (secret, "a token of 20 characters"),
            (&format!("{A} {B}"), "one token per line"),
            (&format!("{A}#"), "not a bearer token"),
            (&format!("{A}é"), "not a bearer token"),
            (&"a".repeat(TOKEN_CHARS_MAX + 1), "tokens have"),
        ] {
            let error = ApiTokens::parse(text, "the file").expect_err(text);
            let message = format!("{error:#}");
            assert!(message.contains(says), "{text:?}: {message}");
            assert!(!message.contains(secret), "{message}");
        }
        let many = (0..=TOKENS_MAX)
            .map(|n| format!("{A}{n:02}"))
            .collect::<Vec<_>>()
            .join("\n");
        let error = ApiTokens::parse(&many, "the file").expect_err("too many");
        assert!(format!("{error:#}").contains("more than"), "{error:#}");
    }

    #[test]
    fn files_come_before_the_environment_and_one_of_them_is_required() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, second) = (dir.path().join("a.token"), dir.path().join("b.token"));
        std::fs::write(&first, format!("{A}\n")).expect("write");
        std::fs::write(&second, B).expect("write");
        let tokens = ApiTokens::load(&[first.clone(), second], Some("ignored-env-token"))
            .expect("the files");
        assert!(tokens.verify(A) && tokens.verify(B));

        let from_env = ApiTokens::load(&[], Some(A)).expect("the environment");
        assert!(from_env.verify(A) && !from_env.verify(B));

        for env in [None, Some(""), Some("  \n")] {
            let error = ApiTokens::load(&[], env).expect_err("no token");
            assert!(format!("{error:#}").contains("--token-file"), "{error:#}");
        }
        let missing = dir.path().join("missing.token");
        let error = ApiTokens::load(&[missing], None).expect_err("missing file");
        assert!(format!("{error:#}").contains("missing.token"), "{error:#}");
        let empty = dir.path().join("empty.token");
        std::fs::write(&empty, "\n").expect("write");
        let error = ApiTokens::load(&[first, empty], None).expect_err("empty file");
        assert!(
            format!("{error:#}").contains("empty.token holds no token"),
            "{error:#}"
        );
    }

    #[test]
    fn b64token_is_rfc_6750s_syntax() {
        for good in ["abc", "a-b.c_d~e+f/g", "abc==", "A1="] {
            assert!(is_b64token(good), "{good}");
        }
        for bad in ["", "=", "==abc", "a=b", "a b", "a,b", "a\"b", "a:b"] {
            assert!(!is_b64token(bad), "{bad}");
        }
    }
}

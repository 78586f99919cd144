//! Opening sled databases: the emitter's outbox and the projector's view store.
//!
//! sled holds an exclusive lock on its directory while any handle to the database is
//! alive — including handles its own background I/O threads keep for a moment after
//! the owner dropped the last `Db`. A process that closes a database and opens it again
//! (a projector restarting its store, a service restarted in place, the next process
//! after one that is exiting) can therefore find the lock still held. Opening waits a
//! bounded time for it rather than failing on that moment; a lock that stays held —
//! another live owner — is still an error, saying so.

use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long opening waits for a lock held by someone else.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Pause between attempts while the lock is held.
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Opens the database `config` describes, waiting up to [`LOCK_WAIT`] for its lock.
/// `what` names the database in the error ("the outbox /var/lib/depot").
pub fn open(config: &sled::Config, what: &str) -> anyhow::Result<sled::Db> {
    open_waiting(config, what, LOCK_WAIT)
}

fn open_waiting(config: &sled::Config, what: &str, wait: Duration) -> anyhow::Result<sled::Db> {
    let deadline = Instant::now() + wait;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(error) if is_lock_held(&error) && Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY_PAUSE);
            }
            Err(error) if is_lock_held(&error) => {
                return Err(error).with_context(|| {
                    format!(
                        "opening {what}: its lock is still held after {} s \
                         (is another process using it?)",
                        wait.as_secs_f64()
                    )
                });
            }
            Err(error) => return Err(error).with_context(|| format!("opening {what}")),
        }
    }
}

/// Whether sled refused to open because another handle holds the directory's lock.
///
/// sled 0.34 reports it as an `Io` error of kind `Other` whose message starts with
/// "could not acquire lock" (config.rs), not as `WouldBlock`: the kind alone cannot
/// tell it from other I/O errors, so the message is checked too.
fn is_lock_held(error: &sled::Error) -> bool {
    match error {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().starts_with("could not acquire lock")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_released_while_waiting_is_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = sled::Config::new().path(dir.path());
        let first = open(&config, "the first handle").expect("first open");
        first.insert(b"k", b"v").expect("insert");
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let second = open(&config, "the second handle").expect("waits, then opens");
        holder.join().expect("holder thread");
        assert_eq!(second.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_lock_that_stays_held_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = sled::Config::new().path(dir.path());
        let _held = open(&config, "the first handle").expect("first open");
        let started = Instant::now();
        let error = open_waiting(&config, "the view store here", Duration::from_millis(200))
            .expect_err("the lock stays held");
        let message = format!("{error:#}");
        assert!(
            message.contains("opening the view store here")
                && message.contains("still held")
                && message.contains("could not acquire lock"),
            "{message}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
    }

    #[test]
    fn other_errors_are_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"not a directory").expect("write");
        let config = sled::Config::new().path(file.join("db"));
        let error = open(&config, "the outbox there").expect_err("not a directory");
        assert!(
            format!("{error:#}").contains("opening the outbox there"),
            "{error:#}"
        );
        assert!(!is_lock_held(
            error.downcast_ref::<sled::Error>().expect("sled error")
        ));
    }
}

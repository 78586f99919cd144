//! A projector's store directory holds generations of the view store: `gen-<n>/`, one
//! sled database each, and a file `CURRENT` naming the one in use. A rebuild folds the
//! ledger from index 0 into a fresh generation and then swaps it in by renaming a new
//! `CURRENT` over the old one — atomic on POSIX file systems — so a crash at any moment
//! leaves either the old view or the complete new one, never a mixture.
//!
//! ```text
//! <store>/CURRENT        "gen-3\n"
//! <store>/gen-3/         the view store in use
//! <store>/gen-4/         a rebuild in progress (removed at the next start if unfinished)
//! ```

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The file naming the generation in use.
const CURRENT_FILE: &str = "CURRENT";
/// Prefix of generation directories.
const GENERATION_PREFIX: &str = "gen-";

/// A projector's store directory.
#[derive(Debug, Clone)]
pub struct StoreDir {
    root: PathBuf,
}

impl StoreDir {
    /// Opens (creating if needed) the store directory.
    pub fn open(root: &Path) -> anyhow::Result<StoreDir> {
        fs::create_dir_all(root)
            .with_context(|| format!("creating store directory {}", root.display()))?;
        Ok(StoreDir {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The generation in use; the first one is created (and made current) on first use.
    pub fn current(&self) -> anyhow::Result<PathBuf> {
        let current = self.root.join(CURRENT_FILE);
        match fs::read_to_string(&current) {
            Ok(text) => {
                let name = text.trim();
                let number = generation_number(name).with_context(|| {
                    format!("{} names {name:?}, not a generation", current.display())
                })?;
                Ok(self.generation_path(number))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let first = self.generation_path(1);
                fs::create_dir_all(&first)
                    .with_context(|| format!("creating {}", first.display()))?;
                self.promote(&first)?;
                Ok(first)
            }
            Err(error) => Err(error).with_context(|| format!("reading {}", current.display())),
        }
    }

    /// A fresh, empty generation directory numbered after every existing one.
    pub fn fresh(&self) -> anyhow::Result<PathBuf> {
        let next = self.generations()?.into_iter().max().unwrap_or(0) + 1;
        let path = self.generation_path(next);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(path)
    }

    /// Makes `generation` the one in use: writes `CURRENT.partial`, syncs it, renames it
    /// over `CURRENT` and syncs the directory.
    pub fn promote(&self, generation: &Path) -> anyhow::Result<()> {
        let name = generation
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| generation_number(name).is_some())
            .with_context(|| format!("{} is not a generation", generation.display()))?;
        let partial = self.root.join(format!("{CURRENT_FILE}.partial"));
        let current = self.root.join(CURRENT_FILE);
        let mut file =
            fs::File::create(&partial).with_context(|| format!("writing {}", partial.display()))?;
        file.write_all(format!("{name}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", partial.display()))?;
        fs::rename(&partial, &current)
            .with_context(|| format!("renaming {} to {CURRENT_FILE}", partial.display()))?;
        fs::File::open(&self.root)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("syncing {}", self.root.display()))?;
        Ok(())
    }

    /// Removes every generation but the one in use (unfinished rebuilds, replaced views).
    pub fn remove_others(&self) -> anyhow::Result<Vec<PathBuf>> {
        let current = self.current()?;
        let mut removed = Vec::new();
        for number in self.generations()? {
            let path = self.generation_path(number);
            if path != current {
                fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    fn generation_path(&self, number: u64) -> PathBuf {
        self.root.join(format!("{GENERATION_PREFIX}{number}"))
    }

    fn generations(&self) -> anyhow::Result<Vec<u64>> {
        let mut numbers = Vec::new();
        for item in
            fs::read_dir(&self.root).with_context(|| format!("listing {}", self.root.display()))?
        {
            let item = item.with_context(|| format!("listing {}", self.root.display()))?;
            if let Some(number) = item.file_name().to_str().and_then(generation_number) {
                numbers.push(number);
            }
        }
        Ok(numbers)
    }
}

fn generation_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(GENERATION_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_generation_replaces_the_current_one_only_when_promoted() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreDir::open(dir.path()).unwrap();
        let first = store.current().unwrap();
        assert!(first.ends_with("gen-1"));
        assert_eq!(store.current().unwrap(), first, "stable across calls");

        let fresh = store.fresh().unwrap();
        assert!(fresh.ends_with("gen-2"));
        assert_eq!(store.current().unwrap(), first, "not in use until promoted");
        // An unfinished rebuild is removed, the view in use kept.
        assert_eq!(store.remove_others().unwrap(), vec![fresh.clone()]);
        assert!(first.exists() && !fresh.exists());

        let fresh = store.fresh().unwrap();
        store.promote(&fresh).unwrap();
        assert_eq!(store.current().unwrap(), fresh);
        assert_eq!(store.remove_others().unwrap(), vec![first.clone()]);
        assert!(!dir.path().join("CURRENT.partial").exists());
    }

    #[test]
    fn a_current_file_naming_something_else_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CURRENT_FILE), "../elsewhere\n").unwrap();
        let error = StoreDir::open(dir.path()).unwrap().current().unwrap_err();
        assert!(
            format!("{error:#}").contains("not a generation"),
            "{error:#}"
        );
    }
}

//! Sequencer (in progress).

//! Emitter SDK and services (in progress).

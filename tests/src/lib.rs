//! Helpers for end-to-end tests (filled in with the daemon).

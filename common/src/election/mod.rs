//! The election core (in progress).

//! The answer engine (in progress).

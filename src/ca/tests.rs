//! Tests of the CA module.

//! The NeoOS mapping core (being written).
#![no_std]
#![forbid(unsafe_code)]
